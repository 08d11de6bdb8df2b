using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal sealed partial class BridgePlugin
{
    /// <summary>
    /// DEL is idempotent (spec): a second DEL, a netns already gone, a link already gone are all success.
    /// The interface goes first and the address last, so a DEL that fails half-way never frees an address
    /// that is still configured on a live interface; the runtime retries and finishes the job.
    /// </summary>
    private async Task DelAsync()
    {
        using (var host = Netlink.Open())
        {
            if (!string.IsNullOrEmpty(env.NetNs) && TryOpenNs(env.NetNs) is { } containerNs)
            {
                using (containerNs)
                {
                    using var pod = Netlink.OpenIn(containerNs);
                    DeleteLink(pod, IfName); // takes the host side with it
                }
            }

            DeleteLink(host, HostVethName);
        }

        if (conf.IpMasq)
        {
            IpMasq.Teardown(conf.Name, ContainerId);
        }

        await _ipam.DelAsync().ConfigureAwait(false);
        if (AgentRegistration.SocketOf(conf) is { } socket)
        {
            await AgentRegistration.DelAsync(socket, env).ConfigureAwait(false);
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
