namespace Loom.Core.Watch;

/// <summary>
/// Something the cache skipped or recovered from: a malformed item (with its key), a broken watch or a
/// compaction (key null), a subscriber that threw. Reported, never thrown, so one bad document cannot stop a node.
/// </summary>
public sealed record CacheError(string Kind, string? Key, string Reason, Exception? Exception = null);
