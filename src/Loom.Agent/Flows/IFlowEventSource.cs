using Loom.Core.Flows;

namespace Loom.Agent.Flows;

/// <summary>Where the agent's flow events come from: the node's BPF ring buffer (tests hand in events they make).</summary>
internal interface IFlowEventSource : IDisposable
{
    /// <summary>Waits up to <paramref name="timeoutMs"/> for events and hands each to <paramref name="onEvent"/>; called from one thread.</summary>
    int Poll(Action<FlowEvent> onEvent, int timeoutMs);

    /// <summary>Events the datapath could not hand over since the ring was made.</summary>
    long Lost { get; }
}
