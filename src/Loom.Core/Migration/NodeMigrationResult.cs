namespace Loom.Core.Migration;

/// <summary>How <c>migrate node</c> ended: migrated, or rolled back with the check that failed.</summary>
public sealed record NodeMigrationResult(string Node, NodeMigrationPhase Phase, string? FailedCheck);
