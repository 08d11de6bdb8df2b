namespace Loom.Core.Store;

/// <summary>A decoded watch event; Value is null for deletes.</summary>
public sealed record ObjectEvent<T>(StoreEventType Type, string Key, T? Value, long Revision)
    where T : class;
