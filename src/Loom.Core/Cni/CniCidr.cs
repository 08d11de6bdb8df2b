using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Loom.Core.Cni;

/// <summary>
/// An address with a prefix length, as CNI writes them ("10.1.0.5/16"). Unlike
/// <see cref="IPNetwork"/> it keeps host bits: an interface address is not a network.
/// </summary>
public readonly record struct CniCidr(IPAddress Address, int PrefixLength)
{
    public bool IsIPv4 => Address.AddressFamily == AddressFamily.InterNetwork;

    public static CniCidr Parse(string text) =>
        TryParse(text, out var cidr) ? cidr : throw new FormatException($"\"{text}\" is not an address in CIDR notation");

    public static bool TryParse(string? text, out CniCidr cidr)
    {
        cidr = default;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (slash <= 0 || !IpText.TryParse(text![..slash], out var address))
        {
            return false;
        }

        var prefixText = text[(slash + 1)..];
        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefixText.Length is 0 or > 3 || (prefixText.Length > 1 && prefixText[0] == '0')
            || !int.TryParse(prefixText, NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) || prefix > max)
        {
            return false;
        }

        cidr = new CniCidr(address, prefix);
        return true;
    }

    public override string ToString() => $"{Address}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";
}
