namespace Loom.Core.Store;

/// <summary>
/// Outcome of a put. On success Revision is the item's new mod revision; on a compare-and-swap conflict it is
/// the item's current mod revision (0 if absent), so the caller can re-read and retry.
/// </summary>
public readonly record struct PutResult(bool Succeeded, long Revision);
