using System.Globalization;

using Loom.Linux;

namespace Loom.Testing;

/// <summary>
/// A uniquely named network namespace for one test (<c>lt&lt;pid&gt;-&lt;n&gt;-&lt;tag&gt;</c>), deleted on Dispose.
/// The first instance per process sweeps namespaces left by killed runs. Tests must only ever
/// create kernel objects through <see cref="Netlink"/> (or inside <see cref="Run{T}"/>), never in the root namespace.
/// </summary>
public sealed class TestNetns : IDisposable
{
    public const string Base = "lt";
    private static readonly Lazy<IReadOnlyList<string>> Swept = new(() => NetNs.SweepStale(Base));
    private static int _counter;
    private INetlink? _netlink;

    public TestNetns(string tag = "ns")
    {
        _ = Swept.Value;
        Name = string.Create(CultureInfo.InvariantCulture, $"{RunPrefix.For(Base)}{Interlocked.Increment(ref _counter)}-{tag}");
        NetNs.Create(Name);
        try
        {
            Handle = NetNs.Open(Name);
        }
        catch
        {
            NetNs.Delete(Name);
            throw;
        }
    }

    public string Name { get; }

    public NetNsHandle Handle { get; }

    /// <summary>A netlink client bound to this namespace (created lazily, disposed with the fixture).</summary>
    public INetlink Netlink => _netlink ??= Loom.Linux.Netlink.OpenIn(Handle);

    public T Run<T>(Func<T> func) => NetNs.Run(Handle, func);

    public void Run(Action action) => NetNs.Run(Handle, action);

    public void Dispose()
    {
        _netlink?.Dispose();
        Handle.Dispose();
        NetNs.Delete(Name);
    }
}
