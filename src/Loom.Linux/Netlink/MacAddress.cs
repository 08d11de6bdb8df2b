using System.Globalization;
using System.Net.NetworkInformation;

namespace Loom.Linux;

/// <summary>MACs as ip(8), bridge(8) and CNI results print them: lower-case hex pairs joined by colons.</summary>
public static class MacAddress
{
    /// <summary>"02:42:ac:11:00:02"; empty for none.</summary>
    public static string Format(PhysicalAddress? mac) =>
        mac is null ? "" : string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));
}
