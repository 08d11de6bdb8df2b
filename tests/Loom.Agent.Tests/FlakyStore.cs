using Grpc.Core;
using Loom.Core.Store;
using Loom.Testing;
using Microsoft.Data.Sqlite;

namespace Loom.Agent.Tests;

/// <summary>
/// A store that is down for its first <paramref name="failures"/> calls, as etcd (RpcException: Unavailable) and a
/// locked SQLite file (SqliteException: SQLITE_BUSY) are, alternately; then it passes every call to the real one.
/// </summary>
internal sealed class FlakyStore(IStore inner, int failures) : DelegatingStore(inner)
{
    private int _calls;

    public int Failed => Math.Min(Volatile.Read(ref _calls), failures);

    protected override void OnCall()
    {
        var n = Interlocked.Increment(ref _calls);
        if (n <= failures)
        {
            throw n % 2 == 1
                ? new RpcException(new Status(StatusCode.Unavailable, "etcd: connection refused"))
                : new SqliteException("SQLite Error 5: 'database is locked'.", 5);
        }
    }
}
