using Loom.Core.Controllers;
using Loom.Core.Networks;

namespace Loom.Agent.Networks;

/// <summary>
/// A controller that programs something for the node's networks (masquerade, host routing): one pass at start, then a
/// pass whenever the networks change and every <c>every</c> (repairing what was changed by hand). A network it must
/// refuse is reported in <see cref="Describe"/> and retried; a first pass failing for a reason
/// <see cref="StartsDespite"/> accepts does not hold the agent's start (the loop retries and reports it).
/// </summary>
internal abstract class NetworkFollower : IController, IDisposable
{
    private readonly SemaphoreSlim _changed = new(0);
    private readonly Func<TimeSpan> _every;
    private long _passes;
    private volatile string? _refused;
    private volatile string _summary = "not synced yet";

    protected NetworkFollower(INodeNetworks networks, AgentLoops loops, TimeSpan every)
        : this(networks, loops, () => every)
    {
    }

    /// <param name="every">The pass interval, read before each wait (it may follow what the last pass found).</param>
    protected NetworkFollower(INodeNetworks networks, AgentLoops loops, Func<TimeSpan> every)
    {
        Networks = networks;
        Loops = loops;
        _every = every;
        networks.Changed += Poke;
    }

    public abstract string Name { get; }

    protected INodeNetworks Networks { get; }

    protected AgentLoops Loops { get; }

    /// <summary>What the last pass refused, shown as the controller's error until a pass succeeds; null when nothing.</summary>
    protected string? Refused
    {
        get => _refused;
        set => _refused = value;
    }

    /// <summary>What the last pass holds, one line for <c>loom status</c>.</summary>
    protected string Summary
    {
        get => _summary;
        set => _summary = value;
    }

    public Task StartAsync(CancellationToken ct)
    {
        try
        {
            Pass();
        }
        catch (Exception e) when (StartsDespite(e))
        {
            Refused ??= $"{e.GetType().Name}: {e.Message}";
            Loops.Log($"{Name}: {(e is NetworkRefusedException ? e.Message : AgentLoops.Describe(e))}");
            Poke();
        }

        return Task.CompletedTask;
    }

    public Task RunAsync(CancellationToken ct) => Loops.RunOnSignalAsync(_changed, _ =>
    {
        Pass();
        return Task.CompletedTask;
    }, Name, _every, ct);

    public ControllerStatus Describe()
    {
        var error = Loops.LastError(Name) ?? Refused;
        return new(Name, error is null, Summary, Interlocked.Read(ref _passes), error);
    }

    /// <summary>One pass in the calling thread's network namespace; throws <see cref="NetworkRefusedException"/> after programming the rest.</summary>
    internal abstract void Pass();

    /// <summary>Which failures of the first pass let the agent start anyway.</summary>
    protected abstract bool StartsDespite(Exception e);

    protected void CountPass() => Interlocked.Increment(ref _passes);

    /// <summary>Asks the loop for a pass now.</summary>
    protected internal void Poke() => _changed.Release();

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Networks.Changed -= Poke;
            _changed.Dispose();
        }
    }
}
