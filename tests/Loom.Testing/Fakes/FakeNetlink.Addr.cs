using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Testing.Fakes;

public sealed partial class FakeNetlink
{
    private readonly List<Addr> _addrs = [];

    public void AddrAdd(int index, IPAddress ip, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(ip);
        lock (_gate)
        {
            const string op = "RTM_NEWADDR";
            var link = Require(index, op);
            if (prefixLength < 0 || prefixLength > (ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            {
                throw Error(Errno.EINVAL, op, $"{ip}/{prefixLength}");
            }

            if (_addrs.Any(a => a.Index == index && a.Ip.Equals(ip) && a.PrefixLength == prefixLength))
            {
                throw Error(Errno.EEXIST, op, $"{ip}/{prefixLength} dev {link.Name}");
            }

            _addrs.Add(new Addr(index, ip, prefixLength) { Label = ip.AddressFamily == AddressFamily.InterNetwork ? link.Name : null });
            Wrote();
        }
    }

    public void AddrDel(int index, IPAddress ip, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(ip);
        lock (_gate)
        {
            Require(index, "RTM_DELADDR");
            if (_addrs.RemoveAll(a => a.Index == index && a.Ip.Equals(ip) && a.PrefixLength == prefixLength) == 0)
            {
                throw Error(Errno.EADDRNOTAVAIL, "RTM_DELADDR", $"{ip}/{prefixLength}");
            }

            Wrote();
        }
    }

    public IReadOnlyList<Addr> AddrList(int index = 0, AddressFamily family = AddressFamily.Unspecified)
    {
        lock (_gate)
        {
            return [.. _addrs.Where(a => (index == 0 || a.Index == index) && SameFamily(a.Ip, family))];
        }
    }
}
