namespace Loom.Core.Controllers;

/// <summary>
/// One concern of a node agent (node registration, a network's routes, Services, the CNI config, the API), owning its
/// state. The agent starts controllers in order, each start retried until it succeeds (a later one may rely on an
/// earlier one's kernel objects), then runs them all; a controller's loops never end on an error, only on cancellation.
/// </summary>
public interface IController
{
    /// <summary>A short name for logs, metrics and <c>loom status</c>, e.g. "services".</summary>
    string Name { get; }

    /// <summary>The first pass: returns once the concern is in place on this node.</summary>
    Task StartAsync(CancellationToken cancellationToken);

    /// <summary>Keeps the concern in place until cancelled.</summary>
    Task RunAsync(CancellationToken cancellationToken);

    /// <summary>How it is doing now, for <c>loom status</c>.</summary>
    ControllerStatus Describe();
}
