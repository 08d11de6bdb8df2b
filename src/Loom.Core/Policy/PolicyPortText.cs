using System.Globalization;

namespace Loom.Core.Policy;

/// <summary>
/// A NetworkPolicy port's int-or-string text: digits (with an optional sign, so "-1" reads as the bad number it is)
/// are a number, anything else a container port's name.
/// </summary>
public static class PolicyPortText
{
    public static bool TryNumber(string? text, out long number)
    {
        number = 0;
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var digits = text[0] is '-' or '+' ? text.AsSpan(1) : text.AsSpan();
        if (digits.Length == 0 || digits.Length > 18)
        {
            return false;
        }

        foreach (var c in digits)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out number);
    }
}
