using System.Diagnostics.CodeAnalysis;
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

    /// <summary>
    /// Compare-and-swap update of one object, retried while others write it in between (an agent's heartbeat on its
    /// node). <paramref name="change"/> may run several times. Null if there is no such object; the value as stored otherwise.
    /// </summary>
    public static async Task<T?> UpdateAsync<T>(this IStore store, ObjectKind<T> kind, string key, Func<T, T> change, CancellationToken cancellationToken = default)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(change);
        for (var attempt = 0; attempt < 50; attempt++)
        {
            if (await store.GetAsync(kind, key, cancellationToken).ConfigureAwait(false) is not { } existing)
            {
                return null;
            }

            var updated = change(existing.Value);
            if (JsonSerializer.Serialize(updated, kind.TypeInfo) == JsonSerializer.Serialize(existing.Value, kind.TypeInfo))
            {
                return existing.Value;
            }

            if ((await store.PutAsync(kind, updated, expectedRevision: existing.Revision, cancellationToken: cancellationToken).ConfigureAwait(false)).Succeeded)
            {
                return updated;
            }
        }

        throw new InvalidOperationException($"{kind.Name} {key}: the store kept changing under the update");
    }

    /// <summary>
    /// Like <see cref="ListAsync{T}"/>, but an item that does not decode is handed to <paramref name="onInvalid"/> (key, reason)
    /// and left out, so one malformed object does not hide every other object of its kind.
    /// </summary>
    public static async Task<(IReadOnlyList<Versioned<T>> Items, long Revision)> ListValidAsync<T>(this IStore store, ObjectKind<T> kind,
        Action<string, string> onInvalid, CancellationToken cancellationToken = default)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(onInvalid);
        var list = await store.ListAsync(kind.Name, cancellationToken).ConfigureAwait(false);
        var items = new List<Versioned<T>>(list.Items.Count);
        foreach (var i in list.Items)
        {
            if (TryDecode(kind, i.Value, out var value, out var error))
            {
                items.Add(new Versioned<T>(i.Key, value, i.ModRevision));
            }
            else
            {
                onInvalid(i.Key, error);
            }
        }

        return (items, list.Revision);
    }

    /// <summary>Like <see cref="GetAsync{T}"/>, but an item that does not decode is handed to <paramref name="onInvalid"/> and read as absent.</summary>
    public static async Task<Versioned<T>?> GetValidAsync<T>(this IStore store, ObjectKind<T> kind, string key, Action<string, string> onInvalid,
        CancellationToken cancellationToken = default)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(onInvalid);
        var item = await store.GetAsync(kind.Name, key, cancellationToken).ConfigureAwait(false);
        if (item is null)
        {
            return null;
        }

        if (TryDecode(kind, item.Value, out var value, out var error))
        {
            return new Versioned<T>(item.Key, value, item.ModRevision);
        }

        onInvalid(item.Key, error);
        return null;
    }

    /// <summary>Like <see cref="WatchAsync{T}"/>, but an event whose value does not decode is handed to <paramref name="onInvalid"/> and skipped.</summary>
    public static async IAsyncEnumerable<ObjectEvent<T>> WatchValidAsync<T>(this IStore store, ObjectKind<T> kind, long fromRevision,
        Action<string, string> onInvalid, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(onInvalid);
        await foreach (var e in store.WatchAsync(kind.Name, fromRevision, cancellationToken).ConfigureAwait(false))
        {
            if (e.Value is null)
            {
                yield return new ObjectEvent<T>(e.Type, e.Key, null, e.Revision);
            }
            else if (TryDecode(kind, e.Value, out var value, out var error))
            {
                yield return new ObjectEvent<T>(e.Type, e.Key, value, e.Revision);
            }
            else
            {
                onInvalid(e.Key, error);
            }
        }
    }

    /// <summary>Decodes one stored value; false and the reason if it is not a valid <typeparamref name="T"/>.</summary>
    public static bool TryDecode<T>(ObjectKind<T> kind, string json, [NotNullWhen(true)] out T? value, [NotNullWhen(false)] out string? error)
        where T : class
    {
        ArgumentNullException.ThrowIfNull(kind);
        try
        {
            value = Decode(kind, json);
            error = null;
            return true;
        }
        catch (JsonException e)
        {
            value = null;
            error = e.Message;
            return false;
        }
    }

    private static T Decode<T>(ObjectKind<T> kind, string json)
        where T : class
        => JsonSerializer.Deserialize(json, kind.TypeInfo) ?? throw new JsonException($"{kind.Name}: stored value is null");
}
