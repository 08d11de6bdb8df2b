namespace Loom.Agent;

/// <summary>Entry point of <c>loom agent</c>.</summary>
public static class NodeAgent
{
    public static Task<int> RunAsync(AgentConfig config, TextWriter log, CancellationToken cancellationToken)
    {
        _ = config;
        _ = log;
        _ = cancellationToken;
        return Task.FromResult(1);
    }
}
