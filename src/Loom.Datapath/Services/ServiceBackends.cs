using Loom.Core.Model;
using Loom.Datapath.Services.Ebpf;

namespace Loom.Datapath.Services;

/// <summary>Factory of <see cref="IServiceBackend"/> implementations: creates the one a <see cref="ServiceProxyMode"/> names.</summary>
public static class ServiceBackends
{
    public static IServiceBackend Create(ServiceProxyMode kind, ServiceProxyOptions? options = null) => kind switch
    {
        ServiceProxyMode.Iptables => Iptables(options),
        ServiceProxyMode.Nftables => Nftables(options),
        ServiceProxyMode.Ebpf => Ebpf(),
        _ => throw new NotSupportedException($"service backend {kind} is not implemented in Loom.Datapath"),
    };

    /// <summary>The backend <paramref name="kind"/> names; <paramref name="ebpf"/> configures the eBPF one (pins, object, cgroup, veths).</summary>
    public static IServiceBackend Create(ServiceProxyMode kind, ServiceProxyOptions? options, EbpfServiceOptions? ebpf) =>
        kind == ServiceProxyMode.Ebpf ? Ebpf(options is null ? ebpf : (ebpf ?? new EbpfServiceOptions()) with { Proxy = options }) : Create(kind, options);

    public static EbpfServiceBackend Ebpf(EbpfServiceOptions? options = null) => new(options);

    public static IServiceBackend Iptables(ServiceProxyOptions? options = null) => new IptablesServiceBackend(options ?? new ServiceProxyOptions());

    public static IServiceBackend Nftables(ServiceProxyOptions? options = null) => new NftablesServiceBackend(options ?? new ServiceProxyOptions());
}
