using System.Net;
using Loom.Core.Cni;
using Loom.Core.Ipam;

namespace Loom.Cni;

/// <summary>
/// Where a pod's addresses come from: Loom's built-in host-local-compatible allocator (<c>"type": "loom"</c>)
/// or any IPAM plugin on CNI_PATH, delegated to exactly as the reference bridge plugin does.
/// </summary>
internal interface IPodIpam
{
    /// <summary>Allocates; the result has ips (without interface indexes), routes and dns.</summary>
    Task<CniResult> AddAsync();

    /// <summary>Frees what the attachment holds; freeing nothing is success.</summary>
    Task DelAsync();

    /// <summary>
    /// Keeps what the attachment holds allocated, marked pending release (see <see cref="IIpAllocator.HoldForRelease"/>);
    /// false when this IPAM cannot (a delegated plugin has no such mark).
    /// </summary>
    Task<bool> HoldForReleaseAsync();

    Task CheckAsync();

    /// <summary>Throws code 50 when no ADD could succeed now.</summary>
    Task StatusAsync();

    Task GcAsync(IReadOnlyList<GcAttachment> valid);
}

internal static class PodIpam
{
    public const string BuiltinType = "loom";

    public static IPodIpam For(CniEnvironment env, NetConf conf)
    {
        var ipam = conf.Ipam ?? throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config", "key \"ipam\": missing");
        return ipam.Type == BuiltinType ? new BuiltinIpam(env, conf) : new DelegatedIpam(env, conf);
    }
}

internal sealed class DelegatedIpam(CniEnvironment env, NetConf conf) : IPodIpam
{
    private readonly IpamInvoker _invoker = new(env, SpawnRunner.Instance);

    public Task<CniResult> AddAsync() => _invoker.AddAsync(conf);

    public Task DelAsync() => _invoker.DelAsync(conf);

    public Task<bool> HoldForReleaseAsync() => Task.FromResult(false);

    public Task CheckAsync() => _invoker.CheckAsync(conf);

    public async Task StatusAsync()
    {
        try
        {
            await _invoker.StatusAsync(conf).ConfigureAwait(false);
        }
        catch (CniException e) when (e.Code == CniErrorCodes.IncompatibleCniVersion)
        {
            // Plugins older than spec 1.1 have no STATUS; the spec treats that as "available".
        }
    }

    public async Task GcAsync(IReadOnlyList<GcAttachment> valid)
    {
        try
        {
            await _invoker.GcAsync(conf).ConfigureAwait(false);
        }
        catch (CniException e) when (e.Code == CniErrorCodes.IncompatibleCniVersion)
        {
            // Same for GC: an older IPAM plugin cannot collect, and that is not our caller's failure.
        }
    }
}

internal sealed class BuiltinIpam(CniEnvironment env, NetConf conf) : IPodIpam
{
    private readonly IpamConfig _config = SubnetFile.TryLoad(conf, env.Command) ?? IpamConfig.Parse(conf.Ipam!.Element, conf.Name);

    private Attachment Attachment => new(env.ContainerId!, env.IfName!);

    public Task<CniResult> AddAsync()
    {
        using var allocator = IpAllocator.Open(_config);
        var allocations = allocator.Allocate(Attachment, RequestedIps());
        var result = new CniResult();
        foreach (var a in allocations)
        {
            result.Ips.Add(new CniIpConfig { Address = new CniCidr(a.Address, a.Subnet.PrefixLength), Gateway = a.Gateway });
        }

        foreach (var r in _config.Routes)
        {
            result.Routes.Add(new CniRoute { Destination = new CniCidr(r.Destination.BaseAddress, r.Destination.PrefixLength), Gateway = r.Gateway });
        }

        return Task.FromResult(result);
    }

    public Task DelAsync()
    {
        using var allocator = IpAllocator.Open(_config);
        allocator.Release(Attachment);
        return Task.CompletedTask;
    }

    public Task<bool> HoldForReleaseAsync()
    {
        using var allocator = IpAllocator.Open(_config);
        allocator.HoldForRelease(Attachment);
        return Task.FromResult(true);
    }

    public Task CheckAsync()
    {
        using var allocator = IpAllocator.Open(_config);
        if (allocator.Find(Attachment).Count != _config.RangeSets.Count)
        {
            throw new CniException(PluginErrors.CheckFailed, "ipam: no address is recorded for this attachment",
                $"container {env.ContainerId} interface {env.IfName} in {_config.NetworkDirectory}");
        }

        return Task.CompletedTask;
    }

    public Task StatusAsync()
    {
        using var allocator = IpAllocator.Open(_config);
        if (!allocator.HasFreeAddress())
        {
            throw new CniException(CniErrorCodes.PluginNotAvailable, "no free address in the pod range", $"every address of network {conf.Name} is allocated");
        }

        return Task.CompletedTask;
    }

    public Task GcAsync(IReadOnlyList<GcAttachment> valid)
    {
        using var allocator = IpAllocator.Open(_config);
        allocator.GarbageCollect(valid.Select(v => new Attachment(v.ContainerId, v.IfName)));
        return Task.CompletedTask;
    }

    // Three places may ask for an address, as with host-local: CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips.
    private List<IPAddress> RequestedIps()
    {
        var wanted = new List<IPAddress>();
        if (env.Args.Ip is { } ip)
        {
            wanted.Add(ip);
        }

        foreach (var s in conf.RuntimeConfig.Ips)
        {
            var text = s.Contains('/', StringComparison.Ordinal) ? s[..s.IndexOf('/', StringComparison.Ordinal)] : s;
            if (!IPAddress.TryParse(text, out var a))
            {
                throw new CniException(CniErrorCodes.InvalidNetworkConfig, "invalid network config", $"key \"runtimeConfig.ips\": \"{s}\" is not an IP address");
            }

            if (!wanted.Contains(a))
            {
                wanted.Add(a);
            }
        }

        return wanted;
    }
}
