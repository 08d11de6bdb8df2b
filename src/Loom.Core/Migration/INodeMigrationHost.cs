namespace Loom.Core.Migration;

/// <summary>
/// The steps of <c>migrate node</c> that touch a host (the lab drives its nodes, a real cluster its machines). Each is
/// safe to run again: a step interrupted mid-way is repeated when the migration resumes.
/// </summary>
public interface INodeMigrationHost
{
    Task CordonAsync(string node, CancellationToken cancellationToken);

    Task DrainAsync(string node, CancellationToken cancellationToken);

    Task RestartAgentAsync(string node, CancellationToken cancellationToken);

    /// <summary>On a real host the operator reboots; the lab removes what a reboot would and starts the node again.</summary>
    Task RebootAsync(string node, CancellationToken cancellationToken);

    /// <summary>Null when <paramref name="node"/> serves pods on <paramref name="network"/>; else the check that failed and why.</summary>
    Task<string?> VerifyAsync(string node, string network, CancellationToken cancellationToken);

    Task UncordonAsync(string node, CancellationToken cancellationToken);

    /// <summary>Puts the old network's CNI config back in place of the new one's.</summary>
    Task RestoreCniConfigAsync(string node, CancellationToken cancellationToken);

    Task DeleteTestPodAsync(string node, CancellationToken cancellationToken);
}
