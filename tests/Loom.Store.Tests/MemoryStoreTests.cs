using Loom.Core.Store;

namespace Loom.Store.Tests;

/// <summary>The in-process store shares nothing between instances, so "both instances" are one store here.</summary>
public sealed class MemoryStoreTests : StoreContractTests
{
    private IStore? _shared;

    protected override Task<IStore> OpenAsync() => Task.FromResult(_shared ??= MemoryStore.Create());
}
