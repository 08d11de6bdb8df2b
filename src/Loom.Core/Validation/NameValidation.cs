using System.Text.RegularExpressions;

namespace Loom.Core.Validation;

/// <summary>
/// The name checks of Kubernetes' apimachinery (pkg/util/validation): each returns the reasons a value is invalid,
/// empty when it is valid, worded as the API server words them. Patterns are anchored with \A and \z: .NET's <c>$</c>
/// also matches before a final newline, which would let "name\n" through.
/// </summary>
public static partial class NameValidation
{
    public const int Dns1123LabelMaxLength = 63;
    public const int Dns1123SubdomainMaxLength = 253;
    public const int LabelValueMaxLength = 63;
    public const int QualifiedNameMaxLength = 63;
    public const int IanaServiceNameMaxLength = 15;

    private const string Dns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    private const string Dns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?";
    private const string QualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

    public static IReadOnlyList<string> IsDns1123Label(string value)
    {
        var errs = new List<string>();
        if (value.Length > Dns1123LabelMaxLength)
        {
            errs.Add($"must be no more than {Dns1123LabelMaxLength} characters");
        }

        if (!Dns1123Label().IsMatch(value))
        {
            errs.Add("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an "
                + $"alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{Dns1123LabelFmt}')");
        }

        return errs;
    }

    public static IReadOnlyList<string> IsDns1123Subdomain(string value)
    {
        var errs = new List<string>();
        if (value.Length > Dns1123SubdomainMaxLength)
        {
            errs.Add($"must be no more than {Dns1123SubdomainMaxLength} characters");
        }

        if (!Dns1123Subdomain().IsMatch(value))
        {
            errs.Add("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
                + $"an alphanumeric character (e.g. 'example.com', regex used for validation is '{Dns1123LabelFmt}(\\.{Dns1123LabelFmt})*')");
        }

        return errs;
    }

    public static IReadOnlyList<string> IsDns1035Label(string value)
    {
        var errs = new List<string>();
        if (value.Length > Dns1123LabelMaxLength)
        {
            errs.Add($"must be no more than {Dns1123LabelMaxLength} characters");
        }

        if (!Dns1035Label().IsMatch(value))
        {
            errs.Add("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end "
                + $"with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '{Dns1035LabelFmt}')");
        }

        return errs;
    }

    /// <summary>IANA_SVC_NAME (RFC 6335): what a Service port's name and a named targetPort must be.</summary>
    public static IReadOnlyList<string> IsValidPortName(string port)
    {
        var errs = new List<string>();
        if (port.Length > IanaServiceNameMaxLength)
        {
            errs.Add($"must be no more than {IanaServiceNameMaxLength} characters");
        }

        if (!PortNameCharset().IsMatch(port))
        {
            errs.Add("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
        }

        if (!PortNameOneLetter().IsMatch(port))
        {
            errs.Add("must contain at least one letter (a-z)");
        }

        if (port.Contains("--", StringComparison.Ordinal))
        {
            errs.Add("must not contain consecutive hyphens");
        }

        if (port.Length > 0 && (port[0] == '-' || port[^1] == '-'))
        {
            errs.Add("must not begin or end with a hyphen");
        }

        return errs;
    }

    /// <summary>A label key: an optional DNS subdomain prefix and '/', then a name of at most 63 characters.</summary>
    public static IReadOnlyList<string> IsQualifiedName(string value)
    {
        var errs = new List<string>();
        var parts = value.Split('/');
        string name;
        switch (parts.Length)
        {
            case 1:
                name = parts[0];
                break;
            case 2:
                var prefix = parts[0];
                name = parts[1];
                if (prefix.Length == 0)
                {
                    errs.Add("prefix part must be non-empty");
                }
                else
                {
                    errs.AddRange(IsDns1123Subdomain(prefix).Select(m => "prefix part " + m));
                }

                break;
            default:
                errs.Add(QualifiedNameMessage());
                return errs;
        }

        if (name.Length == 0)
        {
            errs.Add("name part must be non-empty");
        }
        else if (name.Length > QualifiedNameMaxLength)
        {
            errs.Add($"name part must be no more than {QualifiedNameMaxLength} characters");
        }

        if (!QualifiedName().IsMatch(name))
        {
            errs.Add("name part " + QualifiedNameMessage());
        }

        return errs;
    }

    /// <summary>A label value: empty, or at most 63 characters of the qualified-name alphabet.</summary>
    public static IReadOnlyList<string> IsValidLabelValue(string value)
    {
        var errs = new List<string>();
        if (value.Length > LabelValueMaxLength)
        {
            errs.Add($"must be no more than {LabelValueMaxLength} characters");
        }

        if (value.Length > 0 && !QualifiedName().IsMatch(value))
        {
            errs.Add("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                + $"an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '({QualifiedNameFmt})?')");
        }

        return errs;
    }

    public static IReadOnlyList<string> IsValidPortNum(long port) =>
        port is >= 1 and <= 65535 ? [] : ["must be between 1 and 65535, inclusive"];

    private static string QualifiedNameMessage() =>
        "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
        + $"(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QualifiedNameFmt}') with an optional DNS subdomain "
        + "prefix and '/' (e.g. 'example.com/MyName')";

    [GeneratedRegex(@"\A" + Dns1123LabelFmt + @"\z")]
    private static partial Regex Dns1123Label();

    [GeneratedRegex(@"\A" + Dns1123LabelFmt + @"(\." + Dns1123LabelFmt + @")*\z")]
    private static partial Regex Dns1123Subdomain();

    [GeneratedRegex(@"\A" + Dns1035LabelFmt + @"\z")]
    private static partial Regex Dns1035Label();

    [GeneratedRegex(@"\A" + QualifiedNameFmt + @"\z")]
    private static partial Regex QualifiedName();

    [GeneratedRegex(@"\A[-a-z0-9]+\z")]
    private static partial Regex PortNameCharset();

    [GeneratedRegex("[a-z]")]
    private static partial Regex PortNameOneLetter();
}
