using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal abstract partial class CniPlugin
{
    /// <summary>
    /// DEL is idempotent (spec): a second DEL, a netns already gone, a link already gone are all success.
    /// The interface goes first and the address last, so a DEL that fails half-way never frees an address
    /// that is still configured on a live interface; the runtime retries and finishes the job. The kernel
    /// removes every route through the host veth with it (the routed plumbing's host route included).
    /// </summary>
    private async Task DelAsync()
    {
        using (var host = Netlink.Open())
        {
            if (!string.IsNullOrEmpty(Env.NetNs) && TryOpenNs(Env.NetNs) is { } containerNs)
            {
                using (containerNs)
                {
                    using var pod = Netlink.OpenIn(containerNs);
                    DeleteLink(pod, IfName); // takes the host side with it
                }
            }

            DeleteLink(host, HostVethName);
        }

        if (Conf.IpMasq)
        {
            IpMasq.Teardown(Conf.Name, ContainerId);
        }

        await Ipam.DelAsync().ConfigureAwait(false);
        if (AgentRegistration.SocketOf(Conf) is { } socket)
        {
            await AgentRegistration.DelAsync(socket, Env).ConfigureAwait(false);
        }
    }

    private static NetNsHandle? TryOpenNs(string path)
    {
        try
        {
            return NetNs.Open(path);
        }
        catch (LinuxException)
        {
            return null; // gone already: the kernel destroyed the pod's veth with it
        }
    }
}
