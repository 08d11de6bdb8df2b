using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Loom.Core.Store;

/// <summary>Typed access to an <see cref="IStore"/> through an <see cref="ObjectKind{T}"/>, e.g. <c>store.GetAsync(Kinds.Node, "n1")</c>.</summary>
public static class TypedStoreExtensions
{
    public static async Task<Versioned<T>?> GetAsync<T>(this IStore store, ObjectKind<T> kind, string key, CancellationToken cancellationToken = default)
        where T : class
    {
        var item = await store.GetAsync(kind.Name, key, cancellationToken).ConfigureAwait(false);
        return item is null ? null : new Versioned<T>(item.Key, Decode(kind, item.Value), item.ModRevision);
    }

    public static async Task<(IReadOnlyList<Versioned<T>> Items, long Revision)> ListAsync<T>(this IStore store, ObjectKind<T> kind,
        CancellationToken cancellationToken = default)
        where T : class
    {
        var list = await store.ListAsync(kind.Name, cancellationToken).ConfigureAwait(false);
        return (list.Items.Select(i => new Versioned<T>(i.Key, Decode(kind, i.Value), i.ModRevision)).ToList(), list.Revision);
    }

    public static Task<PutResult> PutAsync<T>(this IStore store, ObjectKind<T> kind, T value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default)
        where T : class
        => store.PutAsync(kind.Name, kind.KeyOf(value), JsonSerializer.Serialize(value, kind.TypeInfo), expectedRevision, lease, cancellationToken);

    public static Task<bool> DeleteAsync<T>(this IStore store, ObjectKind<T> kind, string key, long? expectedRevision = null,
        CancellationToken cancellationToken = default)
        where T : class
        => store.DeleteAsync(kind.Name, key, expectedRevision, cancellationToken);

    public static async IAsyncEnumerable<ObjectEvent<T>> WatchAsync<T>(this IStore store, ObjectKind<T> kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where T : class
    {
        await foreach (var e in store.WatchAsync(kind.Name, fromRevision, cancellationToken).ConfigureAwait(false))
        {
            yield return new ObjectEvent<T>(e.Type, e.Key, e.Value is null ? null : Decode(kind, e.Value), e.Revision);
        }
    }

    private static T Decode<T>(ObjectKind<T> kind, string json)
        where T : class
        => JsonSerializer.Deserialize(json, kind.TypeInfo) ?? throw new JsonException($"{kind.Name}: stored value is null");
}
