using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>Writes a <see cref="CniResult"/> in one version's shape, field order as libcni's Go types.</summary>
internal static class CniResultWriter
{
    public static void Write(Utf8JsonWriter w, CniResult r, string version)
    {
        var legacy = CniVersions.Compare(version, CniVersions.V100) < 0;
        var v11 = CniVersions.Compare(version, CniVersions.V110) >= 0;

        w.WriteStartObject();
        w.WriteString("cniVersion", version);

        if (r.Interfaces.Count > 0)
        {
            w.WriteStartArray("interfaces");
            foreach (var i in r.Interfaces)
            {
                w.WriteStartObject();
                w.WriteString("name", i.Name);
                WriteIfSet(w, "mac", i.Mac);
                if (v11 && i.Mtu != 0)
                {
                    w.WriteNumber("mtu", i.Mtu);
                }

                WriteIfSet(w, "sandbox", i.Sandbox);
                if (v11)
                {
                    WriteIfSet(w, "socketPath", i.SocketPath);
                    WriteIfSet(w, "pciID", i.PciId);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (r.Ips.Count > 0)
        {
            w.WriteStartArray("ips");
            foreach (var ip in r.Ips)
            {
                w.WriteStartObject();
                if (legacy)
                {
                    // 0.3.x/0.4.0 tag every address with its family.
                    w.WriteString("version", ip.Address.IsIPv4 ? "4" : "6");
                }

                if (ip.Interface is { } index)
                {
                    w.WriteNumber("interface", index);
                }

                w.WriteString("address", ip.Address.ToString());
                if (ip.Gateway is { } gw)
                {
                    w.WriteString("gateway", gw.ToString());
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (r.Routes.Count > 0)
        {
            w.WriteStartArray("routes");
            foreach (var route in r.Routes)
            {
                w.WriteStartObject();
                w.WriteString("dst", route.Destination.ToString());
                if (route.Gateway is { } gw)
                {
                    w.WriteString("gw", gw.ToString());
                }

                if (v11)
                {
                    WriteIfNonZero(w, "mtu", route.Mtu);
                    WriteIfNonZero(w, "advmss", route.AdvMss);
                    WriteIfNonZero(w, "priority", route.Priority);
                    if (route.Table is { } table)
                    {
                        w.WriteNumber("table", table);
                    }

                    if (route.Scope is { } scope)
                    {
                        w.WriteNumber("scope", scope);
                    }
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        // libcni's 0.x Result has no omitempty fix-up for DNS and always prints "dns":{};
        // 1.x drops an empty one. Match both so byte-level comparisons with Go plugins hold.
        if (!r.Dns.IsEmpty || legacy)
        {
            WriteDns(w, "dns", r.Dns);
        }

        w.WriteEndObject();
    }

    public static void WriteDns(Utf8JsonWriter w, string name, CniDns dns)
    {
        w.WriteStartObject(name);
        WriteList(w, "nameservers", dns.Nameservers);
        WriteIfSet(w, "domain", dns.Domain);
        WriteList(w, "search", dns.Search);
        WriteList(w, "options", dns.Options);
        w.WriteEndObject();
    }

    private static void WriteList(Utf8JsonWriter w, string name, IList<string> values)
    {
        if (values.Count == 0)
        {
            return;
        }

        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteStringValue(v);
        }

        w.WriteEndArray();
    }

    private static void WriteIfSet(Utf8JsonWriter w, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            w.WriteString(name, value);
        }
    }

    private static void WriteIfNonZero(Utf8JsonWriter w, string name, int value)
    {
        if (value != 0)
        {
            w.WriteNumber(name, value);
        }
    }
}
