using Loom.Core.Store;

namespace Loom.Core.Watch;

/// <summary>One key's change: <see cref="Old"/> is null for Added, <see cref="New"/> is null for Deleted.</summary>
public sealed record Change<T>(ChangeType Type, string Key, Versioned<T>? Old, Versioned<T>? New)
    where T : class;
