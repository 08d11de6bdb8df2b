namespace Loom.Core.Migration;

/// <summary>Where one node is in the migration: its phase, the last step reached and whether it completed, the last error.</summary>
public sealed record NodeMigrationState
{
    public NodeMigrationPhase Phase { get; set; } = NodeMigrationPhase.Pending;

    /// <summary>The step last started; null before the first.</summary>
    public MigrationStep? Step { get; set; }

    /// <summary>Whether <see cref="Step"/> completed (false: interrupted inside it, run it again).</summary>
    public bool Done { get; set; }

    /// <summary>What stopped the step last started (cleared when a step completes).</summary>
    public string? Error { get; set; }

    /// <summary>Why the node was rolled back: the verification check that failed, or an operator's request.</summary>
    public string? RollbackReason { get; set; }
}
