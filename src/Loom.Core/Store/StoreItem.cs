namespace Loom.Core.Store;

/// <summary>One stored document. ModRevision is what compare-and-swap writes pass back as expectedRevision.</summary>
public sealed record StoreItem(string Kind, string Key, string Value, long CreateRevision, long ModRevision, long Lease);
