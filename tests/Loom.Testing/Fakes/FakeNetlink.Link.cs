using System.Net.NetworkInformation;
using Loom.Linux;

namespace Loom.Testing.Fakes;

public sealed partial class FakeNetlink
{
    public Link LinkAdd(LinkSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        lock (_gate)
        {
            const string op = "RTM_NEWLINK";
            CheckName(spec.Name, op);
            var peer = spec as VethSpec;
            if (peer is { PeerNetNs: null })
            {
                CheckName(peer.PeerName, op);
                if (peer.PeerName == spec.Name)
                {
                    throw Error(Errno.EEXIST, op, peer.PeerName);
                }
            }

            if (spec.Mtu is { } mtu)
            {
                CheckMtu(mtu, spec.Name, op);
            }

            VxlanInfo? vxlan = null;
            if (spec is VxlanSpec v)
            {
                if (v.Vni >= 1 << 24)
                {
                    throw Error(Errno.ERANGE, op, spec.Name, "VXLAN ID must be lower than 16777216");
                }

                if (v.UnderlayIndex != 0)
                {
                    Require(v.UnderlayIndex, op);
                }

                vxlan = new VxlanInfo(v.Vni, v.Port, v.Local, v.UnderlayIndex, v.Learning);
            }

            var link = New(spec.Name, spec.Kind, spec.Mtu ?? (spec is VxlanSpec ? 1450 : 1500), spec.HardwareAddr) with { Vxlan = vxlan };
            Add(link);

            // A peer created in another namespace is outside this fake; one created here is a link of its own.
            if (peer is { PeerNetNs: null })
            {
                var other = New(peer.PeerName, "veth", peer.PeerMtu ?? link.Mtu, peer.PeerHardwareAddr) with { ParentIndex = link.Index };
                Add(other);
                Add(link = link with { ParentIndex = other.Index });
                _peers[link.Index] = other.Name;
                _peers[other.Index] = link.Name;
            }

            Wrote();
            return link;
        }
    }

    public void LinkDel(int index)
    {
        lock (_gate)
        {
            Require(index, "RTM_DELLINK");
            if (_links[index].Kind is null)
            {
                throw Error(Errno.EOPNOTSUPP, "RTM_DELLINK", "lo");
            }

            // Deleting one end of a veth pair deletes the other.
            var peer = _peers.ContainsKey(index) ? _links[index].ParentIndex : 0;
            Remove(index);
            if (_links.ContainsKey(peer))
            {
                Remove(peer);
            }

            Wrote();
        }
    }

    public Link? LinkByName(string name)
    {
        lock (_gate)
        {
            return _links.Values.FirstOrDefault(l => l.Name == name);
        }
    }

    public Link? LinkByIndex(int index)
    {
        lock (_gate)
        {
            return _links.GetValueOrDefault(index);
        }
    }

    public IReadOnlyList<Link> LinkList()
    {
        lock (_gate)
        {
            return [.. _links.Values];
        }
    }

    public void LinkSetUp(int index) => Modify(index, "RTM_NEWLINK", l => l with { Flags = l.Flags | IffUp });

    public void LinkSetDown(int index) => Modify(index, "RTM_NEWLINK", l => l with { Flags = l.Flags & ~IffUp });

    public void LinkSetMtu(int index, int mtu) => Modify(index, "RTM_NEWLINK", l =>
    {
        CheckMtu(mtu, l.Name, "RTM_NEWLINK");
        return l with { Mtu = mtu };
    });

    public void LinkSetMaster(int index, int masterIndex) => Modify(index, "RTM_NEWLINK", l =>
    {
        var master = Require(masterIndex, "RTM_NEWLINK");
        return master.Kind == "bridge" && masterIndex != index
            ? l with { MasterIndex = masterIndex }
            : throw Error(Errno.EOPNOTSUPP, "RTM_NEWLINK", l.Name, $"{master.Name} cannot enslave devices");
    });

    public void LinkSetNoMaster(int index) => Modify(index, "RTM_NEWLINK", l =>
    {
        _hairpin.Remove(index);
        return l with { MasterIndex = 0 };
    });

    public void LinkSetHardwareAddr(int index, PhysicalAddress mac)
    {
        ArgumentNullException.ThrowIfNull(mac);
        Modify(index, "RTM_NEWLINK", l => mac.GetAddressBytes().Length == 6 && (mac.GetAddressBytes()[0] & 1) == 0
            ? l with { HardwareAddr = mac }
            : throw Error(Errno.EINVAL, "RTM_NEWLINK", l.Name, "invalid hardware address"));
    }

    /// <summary>As RtNetlink: an alias of IFALIASZ (256) bytes or more is refused before any message; an empty one clears it.</summary>
    public void LinkSetAlias(int index, string alias)
    {
        ArgumentNullException.ThrowIfNull(alias);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(System.Text.Encoding.UTF8.GetByteCount(alias), 256, nameof(alias));
        Modify(index, "RTM_NEWLINK", l => l with { Alias = alias.Length == 0 ? null : alias });
    }

    /// <summary>The link leaves this namespace (with its addresses and routes); a veth peer left here stays.</summary>
    public void LinkSetNsFd(int index, NetNsHandle ns)
    {
        lock (_gate)
        {
            Require(index, "RTM_NEWLINK");
            Remove(index);
            Wrote();
        }
    }

    public void LinkSetHairpin(int index, bool on) => Modify(index, "RTM_SETLINK", l =>
    {
        if (l.MasterIndex == 0)
        {
            throw Error(Errno.EOPNOTSUPP, "RTM_SETLINK", l.Name, "not a bridge port");
        }

        _ = on ? _hairpin.Add(index) : _hairpin.Remove(index);
        return l;
    });

    public void LinkSetPromisc(int index, bool on) => Modify(index, "RTM_NEWLINK", l => l with { Flags = on ? l.Flags | IffPromisc : l.Flags & ~IffPromisc });

    private void Modify(int index, string operation, Func<Link, Link> change)
    {
        lock (_gate)
        {
            var before = Require(index, operation);
            var after = change(before);
            Add(after);
            if (before.IsUp && !after.IsUp)
            {
                // IPv4 drops a link's routes when it goes down; connected ones come back with it.
                _routes.RemoveAll(r => r.OutputIndex == index);
            }

            Wrote();
        }
    }

    private Link New(string name, string kind, int mtu, PhysicalAddress? mac)
    {
        var index = _nextIndex++;

        // Deterministic locally administered MACs keep golden dumps stable.
        mac ??= new PhysicalAddress([0x02, 0x4c, 0x4d, 0x00, (byte)(index >> 8), (byte)index]);
        return new Link(index, name) { Kind = kind, Mtu = mtu, HardwareAddr = mac };
    }

    private void Remove(int index)
    {
        _links.Remove(index);
        _peers.Remove(index);
        _hairpin.Remove(index);
        _addrs.RemoveAll(a => a.Index == index);
        _routes.RemoveAll(r => r.OutputIndex == index);
        foreach (var key in _neighs.Keys.Where(k => k.Index == index).ToList())
        {
            _neighs.Remove(key);
        }

        _fdb.RemoveAll(f => f.Index == index);
        foreach (var port in _links.Values.Where(l => l.MasterIndex == index).ToList())
        {
            Add(port with { MasterIndex = 0 });
            _hairpin.Remove(port.Index);
        }
    }

    private void CheckName(string name, string operation)
    {
        // IFNAMSIZ is 16 with the terminating NUL: longer fails netlink's attribute policy (ERANGE).
        if (name.Length > 15)
        {
            throw Error(Errno.ERANGE, operation, name, "Attribute failed policy validation");
        }

        // '/', ':' and whitespace are not allowed (dev_valid_name).
        if (string.IsNullOrEmpty(name) || name is "." or ".." || name.Any(c => c is '/' or ':' || char.IsWhiteSpace(c)))
        {
            throw Error(Errno.EINVAL, operation, name, "invalid device name");
        }

        if (_links.Values.Any(l => l.Name == name))
        {
            throw Error(Errno.EEXIST, operation, name);
        }
    }

    private static void CheckMtu(int mtu, string name, string operation)
    {
        if (mtu is < 68 or > 65535)
        {
            throw Error(Errno.EINVAL, operation, name, $"mtu {mtu} out of range");
        }
    }
}
