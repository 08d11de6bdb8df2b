using System.Net;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>Reads a result of any supported version into the version-independent model.</summary>
internal static class CniResultReader
{
    public static CniResult Read(JsonElement element, string? versionHint, string path, uint code, string msg)
    {
        var o = new JsonFields(element, path, code, msg);
        var version = o.GetString("cniVersion") ?? versionHint;
        if (version is not null && !CniVersions.IsSupported(version))
        {
            throw new CniException(
                CniErrorCodes.IncompatibleCniVersion,
                "incompatible CNI versions",
                $"key \"{o.Path("cniVersion")}\": result version \"{version}\" is not one of [{string.Join(", ", CniVersions.Supported)}]");
        }

        var result = new CniResult { CniVersion = version };
        foreach (var i in o.GetObjectArray("interfaces") ?? [])
        {
            result.Interfaces.Add(new CniInterface
            {
                Name = i.GetString("name") ?? "",
                Mac = i.GetString("mac"),
                Mtu = i.GetInt("mtu") ?? 0,
                Sandbox = i.GetString("sandbox"),
                SocketPath = i.GetString("socketPath"),
                PciId = i.GetString("pciID"),
            });
        }

        foreach (var ip in o.GetObjectArray("ips") ?? [])
        {
            // "version" (0.3.x/0.4.0) is derived from the address, but must still be well-formed.
            if (ip.GetString("version") is { } family && family is not ("4" or "6"))
            {
                throw ip.Fail(ip.Path("version"), $"expected \"4\" or \"6\", got \"{family}\"");
            }

            var index = ip.GetInt("interface");
            if (index < 0)
            {
                throw ip.Fail(ip.Path("interface"), "must not be negative");
            }

            result.Ips.Add(new CniIpConfig
            {
                Address = Cidr(ip, "address") ?? throw ip.Fail(ip.Path("address"), "missing required key"),
                Gateway = Address(ip, "gateway"),
                Interface = index,
            });
        }

        foreach (var r in o.GetObjectArray("routes") ?? [])
        {
            result.Routes.Add(new CniRoute
            {
                Destination = Cidr(r, "dst") ?? throw r.Fail(r.Path("dst"), "missing required key"),
                Gateway = Address(r, "gw"),
                Mtu = r.GetInt("mtu") ?? 0,
                AdvMss = r.GetInt("advmss") ?? 0,
                Priority = r.GetInt("priority") ?? 0,
                Table = r.GetInt("table"),
                Scope = r.GetInt("scope"),
            });
        }

        if (o.GetObject("dns") is { } dns)
        {
            ReadDns(dns, result.Dns);
        }

        return result;
    }

    public static void ReadDns(JsonFields o, CniDns into)
    {
        foreach (var s in o.GetStringArray("nameservers") ?? [])
        {
            into.Nameservers.Add(s);
        }

        into.Domain = o.GetString("domain");
        foreach (var s in o.GetStringArray("search") ?? [])
        {
            into.Search.Add(s);
        }

        foreach (var s in o.GetStringArray("options") ?? [])
        {
            into.Options.Add(s);
        }
    }

    private static CniCidr? Cidr(JsonFields o, string key)
    {
        if (o.GetString(key) is not { } text)
        {
            return null;
        }

        return CniCidr.TryParse(text, out var cidr) ? cidr : throw o.Fail(o.Path(key), $"\"{text}\" is not an address in CIDR notation");
    }

    private static IPAddress? Address(JsonFields o, string key)
    {
        if (o.GetString(key) is not { Length: > 0 } text)
        {
            return null;
        }

        return IpText.TryParse(text, out var ip) ? ip : throw o.Fail(o.Path(key), $"\"{text}\" is not an IP address");
    }
}
