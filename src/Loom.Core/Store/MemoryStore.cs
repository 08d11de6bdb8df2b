namespace Loom.Core.Store;

/// <summary>Entry point for the in-process store: for unit tests and single-process tools, not shared between processes.</summary>
public static class MemoryStore
{
    public static IStore Create(TimeProvider? timeProvider = null) => new InMemoryStore(timeProvider ?? TimeProvider.System);
}
