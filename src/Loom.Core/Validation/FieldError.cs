using System.Globalization;
using System.Text;

namespace Loom.Core.Validation;

/// <summary>The kinds of field error the Kubernetes API server reports (apimachinery field.ErrorType), with its wording.</summary>
public enum FieldErrorType
{
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    Forbidden,
}

/// <summary>
/// One invalid field, printed as the API server prints it:
/// <c>spec.ports[0].name: Invalid value: "x": must be no more than 15 characters</c>. The value is quoted with every
/// control character escaped, so an error message is always one line whatever the object held.
/// </summary>
public sealed record FieldError(string Field, FieldErrorType Type, string? Value, string Detail)
{
    // Long enough for any valid value; a 10k-character name should not make a 10k-character message.
    private const int MaxShownValue = 256;

    public string Message
    {
        get
        {
            var sb = new StringBuilder(Type switch
            {
                FieldErrorType.Required => "Required value",
                FieldErrorType.NotSupported => "Unsupported value",
                FieldErrorType.Duplicate => "Duplicate value",
                FieldErrorType.Forbidden => "Forbidden",
                _ => "Invalid value",
            });
            if (Value is not null)
            {
                sb.Append(": ").Append(Value);
            }

            if (Detail.Length > 0)
            {
                sb.Append(": ").Append(Detail);
            }

            return sb.ToString();
        }
    }

    public override string ToString() => Field + ": " + Message;

    public static FieldError Required(string field, string detail = "") => new(field, FieldErrorType.Required, null, detail);

    public static FieldError Invalid(string field, string? value, string detail) => new(field, FieldErrorType.Invalid, Quote(value), detail);

    public static FieldError Invalid(string field, long value, string detail) =>
        new(field, FieldErrorType.Invalid, value.ToString(CultureInfo.InvariantCulture), detail);

    public static FieldError NotSupported(string field, string? value, string detail) => new(field, FieldErrorType.NotSupported, Quote(value), detail);

    public static FieldError Duplicate(string field, string? value) => new(field, FieldErrorType.Duplicate, Quote(value), "");

    public static FieldError Forbidden(string field, string detail) => new(field, FieldErrorType.Forbidden, null, detail);

    /// <summary>Go's %q, roughly: double quotes, with <c>"</c>, <c>\</c> and every control character escaped.</summary>
    public static string Quote(string? value)
    {
        if (value is null)
        {
            return "null";
        }

        var sb = new StringBuilder(value.Length + 2).Append('"');
        var shown = value.Length > MaxShownValue ? value.AsSpan(0, MaxShownValue) : value.AsSpan();
        foreach (var c in shown)
        {
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (char.IsControl(c) || c is '\u2028' or '\u2029')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        if (shown.Length < value.Length)
        {
            sb.Append(string.Create(CultureInfo.InvariantCulture, $"...({value.Length} characters)"));
        }

        return sb.Append('"').ToString();
    }
}
