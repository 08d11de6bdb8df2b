namespace Loom.Core.Store;

/// <summary>A decoded object with the mod revision to pass back for compare-and-swap.</summary>
public sealed record Versioned<T>(string Key, T Value, long Revision);
