using Loom.Core.Model;

namespace Loom.Datapath.Services;

/// <summary>Creates the service backend the cluster config names.</summary>
public static class ServiceBackends
{
    public static IServiceBackend Create(ServiceBackend kind, ServiceProxyOptions? options = null) => kind switch
    {
        ServiceBackend.Iptables => Iptables(options),
        ServiceBackend.Nftables => Nftables(options),
        _ => throw new NotSupportedException($"service backend {kind} is not implemented in Loom.Datapath"),
    };

    public static IServiceBackend Iptables(ServiceProxyOptions? options = null) => new IptablesServiceBackend(options ?? new ServiceProxyOptions());

    public static IServiceBackend Nftables(ServiceProxyOptions? options = null) => new NftablesServiceBackend(options ?? new ServiceProxyOptions());
}
