using Loom.Core.Cni;
using Loom.Linux;
using Loom.Linux.Firewall;

namespace Loom.Cni;

internal abstract partial class CniPlugin
{
    /// <summary>
    /// DEL is idempotent (spec): a second DEL, a netns already gone, a link already gone are all success.
    /// The interface goes first, then the agent's Endpoint, and the address last, so a DEL that fails half-way never
    /// frees an address that is still configured on a live interface or named by an Endpoint; the runtime retries and
    /// finishes the job. The kernel removes every route through the host veth with it (the routed host route included).
    /// </summary>
    private async Task DelAsync()
    {
        using (var host = Netlink.Open())
        {
            if (!string.IsNullOrEmpty(Env.NetNs) && TryOpenNs(Env.NetNs) is { } containerNs)
            {
                using (containerNs)
                {
                    using var pod = Netlink.OpenInFromCurrentThread(containerNs);
                    DeleteLink(pod, IfName); // takes the host side with it
                }
            }

            DeleteLink(host, HostVethName);
        }

        if (Conf.IpMasq)
        {
            IpMasq.Teardown(Conf.Name, ContainerId);
        }

        await ReleaseAddressesAsync(await TellAgentAsync().ConfigureAwait(false)).ConfigureAwait(false);
    }

    /// <summary>
    /// endpoint-del: true when the agent confirmed the Endpoint is gone (or there is no agent to tell). It comes
    /// before the address is freed: an Endpoint that outlives its address would send its Services' traffic to
    /// whichever pod the address is handed to next.
    /// </summary>
    private async Task<bool> TellAgentAsync() =>
        AgentRegistration.SocketOf(Conf) is not { } socket || await AgentRegistration.DelAsync(socket, Env).ConfigureAwait(false);

    /// <summary>
    /// Frees the attachment's addresses once the agent has removed its Endpoint. Without that word the built-in IPAM
    /// keeps them allocated, marked pending release, and the agent's endpoint reconciler frees them when it has
    /// removed the Endpoint itself: no ADD can get the address while a stale Endpoint names it, and DEL still
    /// succeeds with the agent down. A delegated IPAM plugin has no such mark: DEL then fails with code 11 (its
    /// address still held) and the runtime retries it until the agent answers.
    /// </summary>
    private async Task ReleaseAddressesAsync(bool agentConfirmed)
    {
        if (agentConfirmed)
        {
            await Ipam.DelAsync().ConfigureAwait(false);
        }
        else if (!await Ipam.HoldForReleaseAsync().ConfigureAwait(false))
        {
            throw new CniException(CniErrorCodes.TryAgainLater, "the loom agent could not remove the pod's endpoint",
                $"the address stays allocated by IPAM plugin {Conf.Ipam!.Type} until DEL succeeds");
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
