using System.Runtime.CompilerServices;
using System.Text;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Loom.Core.Store;
using Mvccpb;

namespace Loom.Store.Etcd;

/// <summary>
/// <see cref="IStore"/> on etcd v3: the store revision is etcd's cluster revision, compare-and-swap is a Txn on the
/// key's mod_revision (an absent key's is 0), watches are etcd watches from revision + 1 over the kind's key range,
/// and leases are etcd leases. Uses the generated gRPC stubs directly so streams are plain IAsyncEnumerables.
/// </summary>
internal sealed class EtcdStoreImpl : IStore
{
    private readonly GrpcChannel _channel;
    private readonly KV.KVClient _kv;
    private readonly Watch.WatchClient _watch;
    private readonly Lease.LeaseClient _lease;
    private readonly string _prefix;

    public EtcdStoreImpl(GrpcChannel channel, string prefix)
    {
        _channel = channel;
        _kv = new KV.KVClient(_channel);
        _watch = new Watch.WatchClient(_channel);
        _lease = new Lease.LeaseClient(_channel);
        _prefix = prefix;
    }

    public async Task<long> GetRevisionAsync(CancellationToken cancellationToken = default)
    {
        var key = Bytes(_prefix);
        var response = await _kv.RangeAsync(new RangeRequest { Key = key, RangeEnd = PrefixEnd(key), CountOnly = true },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.Header.Revision;
    }

    public async Task<StoreItem?> GetAsync(string kind, string key, CancellationToken cancellationToken = default)
    {
        var response = await _kv.RangeAsync(new RangeRequest { Key = ItemKey(kind, key) }, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        return response.Kvs.Count == 0 ? null : ToItem(response.Kvs[0]);
    }

    public async Task<StoreList> ListAsync(string kind, CancellationToken cancellationToken = default)
    {
        var start = KindPrefix(kind);
        var response = await _kv.RangeAsync(new RangeRequest
        {
            Key = start,
            RangeEnd = PrefixEnd(start),
            SortOrder = RangeRequest.Types.SortOrder.Ascend,
            SortTarget = RangeRequest.Types.SortTarget.Key,
        }, cancellationToken: cancellationToken).ConfigureAwait(false);
        return new StoreList(response.Kvs.Select(ToItem).ToList(), response.Header.Revision);
    }

    public async Task<PutResult> PutAsync(string kind, string key, string value, long? expectedRevision = null, long lease = 0,
        CancellationToken cancellationToken = default)
    {
        StoreKeys.ValidateKind(kind);
        StoreKeys.ValidateKey(key);
        var put = new PutRequest { Key = ItemKey(kind, key), Value = Bytes(value), Lease = lease };
        if (expectedRevision is not { } expected)
        {
            var response = await _kv.PutAsync(put, cancellationToken: cancellationToken).ConfigureAwait(false);
            return new PutResult(true, response.Header.Revision);
        }

        var txn = await _kv.TxnAsync(Guarded(put.Key, expected, new RequestOp { RequestPut = put }), cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        return txn.Succeeded
            ? new PutResult(true, txn.Header.Revision)
            : new PutResult(false, CurrentModRevision(txn));
    }

    public async Task<bool> DeleteAsync(string kind, string key, long? expectedRevision = null, CancellationToken cancellationToken = default)
    {
        var delete = new DeleteRangeRequest { Key = ItemKey(kind, key) };
        if (expectedRevision is not { } expected)
        {
            var response = await _kv.DeleteRangeAsync(delete, cancellationToken: cancellationToken).ConfigureAwait(false);
            return response.Deleted > 0;
        }

        var txn = await _kv.TxnAsync(Guarded(delete.Key, expected, new RequestOp { RequestDeleteRange = delete }),
            cancellationToken: cancellationToken).ConfigureAwait(false);
        return txn.Succeeded && txn.Responses[0].ResponseDeleteRange.Deleted > 0;
    }

    public async IAsyncEnumerable<StoreEvent> WatchAsync(string? kind, long fromRevision,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var start = kind is null ? Bytes(_prefix) : KindPrefix(kind);
        using var call = _watch.Watch(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest { Key = start, RangeEnd = PrefixEnd(start), StartRevision = fromRevision + 1 },
        }, cancellationToken).ConfigureAwait(false);

        await foreach (var response in call.ResponseStream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            if (response.CompactRevision != 0)
            {
                // etcd reports the oldest revision it still has; our convention names the last one dropped.
                throw new StoreCompactedException(fromRevision, response.CompactRevision - 1);
            }

            if (response.Canceled)
            {
                throw new InvalidOperationException($"etcd cancelled the watch: {response.CancelReason}");
            }

            foreach (var e in response.Events)
            {
                var (k, key) = SplitKey(e.Kv.Key);
                yield return e.Type == Event.Types.EventType.Put
                    ? new StoreEvent(StoreEventType.Put, k, key, e.Kv.Value.ToStringUtf8(), e.Kv.ModRevision)
                    : new StoreEvent(StoreEventType.Delete, k, key, null, e.Kv.ModRevision);
            }
        }

        throw new InvalidOperationException("etcd closed the watch stream");
    }

    public async Task<long> GrantLeaseAsync(TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        // etcd counts in whole seconds and raises anything below its minimum (about 1.5 x the election timeout).
        var response = await _lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = (long)Math.Ceiling(ttl.TotalSeconds) },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.ID;
    }

    public async Task<bool> KeepAliveAsync(long lease, CancellationToken cancellationToken = default)
    {
        using var call = _lease.LeaseKeepAlive(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = lease }, cancellationToken).ConfigureAwait(false);
        await call.RequestStream.CompleteAsync().ConfigureAwait(false);
        // A lease that is gone comes back with TTL <= 0 rather than as an error.
        return await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false) && call.ResponseStream.Current.TTL > 0;
    }

    public async Task RevokeLeaseAsync(long lease, CancellationToken cancellationToken = default)
    {
        try
        {
            await _lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = lease }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            // Already expired or revoked: the keys are gone either way.
        }
    }

    public async Task CompactAsync(long revision, CancellationToken cancellationToken = default)
    {
        // etcd's compact(r) keeps r itself; ours drops r too, so compact at r + 1 (but never past the head).
        var target = Math.Min(revision + 1, await GetRevisionAsync(cancellationToken).ConfigureAwait(false));
        try
        {
            await _kv.CompactAsync(new CompactionRequest { Revision = target }, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange)
        {
            // Already compacted at or past target.
        }
    }

    public ValueTask DisposeAsync()
    {
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }

    private static TxnRequest Guarded(ByteString key, long expectedRevision, RequestOp success) => new()
    {
        Compare =
        {
            new Compare
            {
                Key = key,
                Target = Compare.Types.CompareTarget.Mod,
                Result = Compare.Types.CompareResult.Equal,
                ModRevision = expectedRevision,
            },
        },
        Success = { success },
        Failure = { new RequestOp { RequestRange = new RangeRequest { Key = key, KeysOnly = true } } },
    };

    private static long CurrentModRevision(TxnResponse failed)
    {
        var kvs = failed.Responses[0].ResponseRange.Kvs;
        return kvs.Count == 0 ? 0 : kvs[0].ModRevision;
    }

    private StoreItem ToItem(KeyValue kv)
    {
        var (kind, key) = SplitKey(kv.Key);
        return new StoreItem(kind, key, kv.Value.ToStringUtf8(), kv.CreateRevision, kv.ModRevision, kv.Lease);
    }

    private (string Kind, string Key) SplitKey(ByteString raw)
    {
        var path = raw.ToStringUtf8().AsSpan(_prefix.Length);
        var slash = path.IndexOf('/');
        return (path[..slash].ToString(), path[(slash + 1)..].ToString());
    }

    private ByteString ItemKey(string kind, string key) => Bytes($"{_prefix}{kind}/{key}");

    private ByteString KindPrefix(string kind)
    {
        StoreKeys.ValidateKind(kind);
        return Bytes($"{_prefix}{kind}/");
    }

    private static ByteString Bytes(string s) => ByteString.CopyFrom(Encoding.UTF8.GetBytes(s));

    /// <summary>The smallest key greater than every key with this prefix, as etcd's range_end wants.</summary>
    private static ByteString PrefixEnd(ByteString prefix)
    {
        var end = prefix.ToByteArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return ByteString.CopyFrom(end.AsSpan(0, i + 1));
            }
        }

        return ByteString.CopyFrom(0);
    }
}
