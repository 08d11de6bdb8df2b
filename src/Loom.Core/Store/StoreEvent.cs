namespace Loom.Core.Store;

/// <summary>A change as a watch delivers it; Value is null for deletes (including lease expiry).</summary>
public sealed record StoreEvent(StoreEventType Type, string Kind, string Key, string? Value, long Revision);
