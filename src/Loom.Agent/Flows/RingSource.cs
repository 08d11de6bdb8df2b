using Loom.Core.Flows;
using Loom.Datapath.Flows;

namespace Loom.Agent.Flows;

/// <summary>The node's flow-event ring (<see cref="FlowEventReader"/>) as the controller's source.</summary>
internal sealed class RingSource(FlowEventReader reader) : IFlowEventSource
{
    public long Lost => reader.Lost;

    public int Poll(Action<FlowEvent> onEvent, int timeoutMs) => reader.Poll(onEvent, timeoutMs);

    public void Dispose() => reader.Dispose();

    /// <summary>Opens the ring pinned under the agent's bpfPinDir (creating the shared maps when no program did yet).</summary>
    public static RingSource Open(AgentConfig config) => new(FlowEventReader.Open(FlowEventMaps.DirectoryFor(config.BpfPinDir)));

    /// <summary>
    /// Writes on/off and the aggregation into loom_ev_config: every program reads it at its next packet. Off with no
    /// maps pinned yet, there is nothing to tell (a program loaded later finds the ring off by default).
    /// </summary>
    public static void Configure(AgentConfig config, bool enabled, string aggregation)
    {
        var directory = FlowEventMaps.DirectoryFor(config.BpfPinDir);
        if (!enabled && !File.Exists(Path.Combine(directory, FlowEventMaps.Config)))
        {
            return;
        }

        new FlowEventConfig(enabled, aggregation == "none" ? FlowAggregation.None : FlowAggregation.Medium, FlowEventConfig.DefaultInterval)
            .Write(directory);
    }
}
