namespace Loom.Core.Store;

/// <summary>A consistent snapshot of one kind; watch from <see cref="Revision"/> to follow it.</summary>
public sealed record StoreList(IReadOnlyList<StoreItem> Items, long Revision);
