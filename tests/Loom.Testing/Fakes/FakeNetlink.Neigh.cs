using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Testing.Fakes;

public sealed partial class FakeNetlink
{
    private readonly SortedDictionary<(int Index, string Ip), Neigh> _neighs = [];
    private readonly List<FdbEntry> _fdb = [];

    public void NeighAdd(Neigh neigh) => NeighWrite(neigh, replace: false);

    public void NeighSet(Neigh neigh) => NeighWrite(neigh, replace: true);

    public void NeighDel(Neigh neigh)
    {
        ArgumentNullException.ThrowIfNull(neigh);
        lock (_gate)
        {
            Require(neigh.Index, "RTM_DELNEIGH");
            if (!_neighs.Remove((neigh.Index, neigh.Ip.ToString())))
            {
                throw Error(Errno.ENOENT, "RTM_DELNEIGH", neigh.Ip.ToString());
            }

            Wrote();
        }
    }

    public IReadOnlyList<Neigh> NeighList(int index = 0, AddressFamily family = AddressFamily.Unspecified)
    {
        lock (_gate)
        {
            return [.. _neighs.Values.Where(n => (index == 0 || n.Index == index) && SameFamily(n.Ip, family))];
        }
    }

    public void FdbAppend(int index, PhysicalAddress mac, IPAddress destination)
    {
        ArgumentNullException.ThrowIfNull(mac);
        ArgumentNullException.ThrowIfNull(destination);
        lock (_gate)
        {
            var link = Require(index, "RTM_NEWNEIGH");
            if (link.Kind != "vxlan")
            {
                throw Error(Errno.EOPNOTSUPP, "RTM_NEWNEIGH", link.Name, "FDB entries with a destination need a vxlan device");
            }

            var bytes = mac.GetAddressBytes();
            var floodOrMulticast = bytes.All(b => b == 0) || (bytes[0] & 1) != 0;
            var remotes = _fdb.Where(f => f.Index == index && f.HardwareAddr.Equals(mac)).ToList();

            // vxlan appends a remote only to the flood/multicast MACs; a unicast MAC keeps its one remote, silently.
            if (remotes.Any(r => destination.Equals(r.Destination)) || (remotes.Count > 0 && !floodOrMulticast))
            {
                return;
            }

            _fdb.Add(new FdbEntry(index, mac) { Destination = destination, State = NeighState.Permanent, Flags = NeighFlags.Self });
            Wrote();
        }
    }

    public void FdbDel(int index, PhysicalAddress mac, IPAddress? destination = null)
    {
        ArgumentNullException.ThrowIfNull(mac);
        lock (_gate)
        {
            Require(index, "RTM_DELNEIGH");
            if (_fdb.RemoveAll(f => f.Index == index && f.HardwareAddr.Equals(mac) && (destination is null || destination.Equals(f.Destination))) == 0)
            {
                throw Error(Errno.ENOENT, "RTM_DELNEIGH", Mac(mac));
            }

            Wrote();
        }
    }

    public IReadOnlyList<FdbEntry> FdbList(int index)
    {
        lock (_gate)
        {
            return [.. _fdb.Where(f => f.Index == index)];
        }
    }

    private void NeighWrite(Neigh neigh, bool replace)
    {
        ArgumentNullException.ThrowIfNull(neigh);
        lock (_gate)
        {
            Require(neigh.Index, "RTM_NEWNEIGH");
            var key = (neigh.Index, neigh.Ip.ToString());
            if (!replace && _neighs.ContainsKey(key))
            {
                throw Error(Errno.EEXIST, "RTM_NEWNEIGH", neigh.Ip.ToString());
            }

            _neighs[key] = neigh;
            Wrote();
        }
    }
}
