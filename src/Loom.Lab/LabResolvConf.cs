using System.Text;
using Loom.Core.Services;

namespace Loom.Lab;

/// <summary>kubelet's resolv.conf for ClusterFirst pods, in /etc/netns/NETNS where <c>ip netns exec</c> binds it.</summary>
internal static class LabResolvConf
{
    /// <summary>kubelet's resolv.conf for a ClusterFirst pod, where <c>ip netns exec</c> binds it over /etc/resolv.conf.</summary>
    internal static void Write(string netns, string @namespace)
    {
        var dir = Path.Combine(Lab.EtcNetns, netns);
        Directory.CreateDirectory(dir);
        var text = new StringBuilder()
            .Append("search ").Append(@namespace).Append(".svc.").Append(Lab.ClusterDomain).Append(" svc.").Append(Lab.ClusterDomain).Append(' ').Append(Lab.ClusterDomain).Append('\n')
            .Append("nameserver ").Append(new ClusterIpAllocator(ClusterIpAllocator.DefaultServiceCidr).DnsIp).Append('\n')
            .Append("options ndots:5\n")
            .ToString();
        File.WriteAllText(Path.Combine(dir, "resolv.conf"), text);
    }

    internal static void Remove(string netns)
    {
        if (netns.Length == 0 || netns.Contains('/', StringComparison.Ordinal) || netns is "." or "..")
        {
            return;
        }

        var dir = Path.Combine(Lab.EtcNetns, netns);
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
