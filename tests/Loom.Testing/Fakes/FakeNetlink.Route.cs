using System.Net;
using System.Net.Sockets;
using Loom.Linux;

namespace Loom.Testing.Fakes;

public sealed partial class FakeNetlink
{
    private readonly List<Route> _routes = [];

    public void RouteAdd(Route route) => RouteWrite(route, replace: false);

    public void RouteReplace(Route route) => RouteWrite(route, replace: true);

    public void RouteDel(Route route)
    {
        ArgumentNullException.ThrowIfNull(route);
        lock (_gate)
        {
            // Like fib_table_delete: destination and table must match, other fields only if set.
            var match = _routes.FindIndex(r => r.Destination.Equals(route.Destination) && r.Table == route.Table
                && (route.Gateway is null || route.Gateway.Equals(r.Gateway))
                && (route.OutputIndex == 0 || route.OutputIndex == r.OutputIndex)
                && (route.Priority == 0 || route.Priority == r.Priority));
            if (match < 0)
            {
                throw Error(Errno.ESRCH, "RTM_DELROUTE", route.Destination.ToString());
            }

            _routes.RemoveAt(match);
            Wrote();
        }
    }

    public IReadOnlyList<Route> RouteList(AddressFamily family = AddressFamily.Unspecified, uint table = Route.MainTable)
    {
        lock (_gate)
        {
            return [.. AllRoutes().Where(r => SameFamily(r.Destination.BaseAddress, family) && (table == 0 || r.Table == table))];
        }
    }

    private void RouteWrite(Route route, bool replace)
    {
        ArgumentNullException.ThrowIfNull(route);
        lock (_gate)
        {
            const string op = "RTM_NEWROUTE";
            var subject = route.Destination.ToString();
            var oif = route.OutputIndex;
            if (oif != 0)
            {
                var link = Require(oif, op);
                if (!link.IsUp)
                {
                    throw Error(Errno.ENETDOWN, op, subject, "Nexthop device is not up");
                }
            }

            if (route.Gateway is { } gw && !route.OnLink)
            {
                // Without onlink the gateway must sit in a connected subnet (of the given device, if any).
                var via = Connected().FirstOrDefault(c => c.Destination.Contains(gw) && (oif == 0 || c.OutputIndex == oif));
                oif = via?.OutputIndex ?? throw Error(Errno.ENETUNREACH, op, subject, "Nexthop has invalid gateway");
            }
            else if (route.Gateway is not null && oif == 0)
            {
                throw Error(Errno.EINVAL, op, subject, "onlink requires an output device");
            }
            else if (route.Gateway is null && oif == 0 && route.Type == RouteType.Unicast)
            {
                throw Error(Errno.EINVAL, op, subject, "no nexthop device");
            }

            var stored = route with
            {
                OutputIndex = oif,
                Scope = route.Scope ?? (route.Gateway is null && route.Type == RouteType.Unicast ? RouteScope.Link : RouteScope.Universe),
            };

            // The kernel keys a route by table, destination and metric (and tos); a second one is EEXIST.
            var existing = _routes.FindIndex(r => r.Table == route.Table && r.Destination.Equals(route.Destination) && r.Priority == route.Priority);
            if (!replace && (existing >= 0 || Connected().Any(c => c.Table == route.Table && c.Destination.Equals(route.Destination) && c.Priority == route.Priority)))
            {
                throw Error(Errno.EEXIST, op, subject);
            }

            if (existing >= 0)
            {
                _routes[existing] = stored;
            }
            else
            {
                _routes.Add(stored);
            }

            Wrote();
        }
    }

    /// <summary>Stored routes plus the prefix routes the kernel derives from addresses on up links.</summary>
    private IEnumerable<Route> AllRoutes() => Connected().Concat(_routes);

    private IEnumerable<Route> Connected() =>
        _addrs.Where(a => _links.TryGetValue(a.Index, out var l) && l.IsUp && a.PrefixLength < (a.Ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            .Select(a => new Route(new IPNetwork(Mask(a.Ip, a.PrefixLength), a.PrefixLength))
            {
                OutputIndex = a.Index,
                Scope = RouteScope.Link,
                Protocol = RouteProtocol.Kernel,
                PreferredSource = a.Ip,
                Priority = a.Ip.AddressFamily == AddressFamily.InterNetwork ? 0u : 256u,
            });

    private static IPAddress Mask(IPAddress ip, int prefixLength)
    {
        var bytes = ip.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var keep = Math.Clamp(prefixLength - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xff << (8 - keep));
        }

        return new IPAddress(bytes);
    }
}
