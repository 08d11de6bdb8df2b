using System.Globalization;
using System.Text.Json;
using Loom.Core.Validation;

namespace Loom.Core.Selection;

/// <summary>
/// Reads a selector in the API's JSON shape (<c>{"matchLabels": {...}, "matchExpressions": [{"key", "operator",
/// "values"}]}</c>); a null field is an absent one, an unknown field an error, as strict decoding has it. Every error
/// names its field; on any error the result is null.
/// </summary>
public static class LabelSelectorJson
{
    public static LabelSelector? Parse(JsonElement json, string field, List<FieldError> errors)
    {
        ArgumentNullException.ThrowIfNull(field);
        ArgumentNullException.ThrowIfNull(errors);
        var before = errors.Count;
        if (json.ValueKind != JsonValueKind.Object)
        {
            errors.Add(FieldError.Invalid(field, json.ValueKind.ToString(), "must be an object"));
            return null;
        }

        Dictionary<string, string>? matchLabels = null;
        var expressions = new List<(string, string, IReadOnlyList<string>)>();
        foreach (var p in json.EnumerateObject())
        {
            var path = field + "." + p.Name;
            switch (p.Name)
            {
                case "matchLabels":
                    matchLabels = StringMap(p.Value, path, errors);
                    break;
                case "matchExpressions" when p.Value.ValueKind == JsonValueKind.Array:
                    var i = 0;
                    foreach (var e in p.Value.EnumerateArray())
                    {
                        if (Expression(e, string.Create(CultureInfo.InvariantCulture, $"{path}[{i++}]"), errors) is { } x)
                        {
                            expressions.Add(x);
                        }
                    }

                    break;
                case "matchExpressions" when p.Value.ValueKind != JsonValueKind.Null:
                    errors.Add(FieldError.Invalid(path, p.Value.ValueKind.ToString(), "must be a list"));
                    break;
                case "matchExpressions":
                    break;
                default:
                    errors.Add(new FieldError(path, FieldErrorType.Invalid, null, "unknown field"));
                    break;
            }
        }

        // After a shape error an expression may be missing, so Create's indexes would no longer name the input's.
        return errors.Count == before ? LabelSelector.Create(matchLabels, expressions, field, errors) : null;
    }

    private static (string, string, IReadOnlyList<string>)? Expression(JsonElement e, string path, List<FieldError> errors)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            errors.Add(FieldError.Invalid(path, e.ValueKind.ToString(), "must be an object"));
            return null;
        }

        string? key = null, op = null;
        IReadOnlyList<string> values = [];
        foreach (var p in e.EnumerateObject())
        {
            var at = path + "." + p.Name;
            switch (p.Name)
            {
                case "key":
                    key = Str(p.Value, at, errors);
                    break;
                case "operator":
                    op = Str(p.Value, at, errors);
                    break;
                case "values":
                    values = StringList(p.Value, at, errors);
                    break;
                default:
                    errors.Add(new FieldError(at, FieldErrorType.Invalid, null, "unknown field"));
                    break;
            }
        }

        if (string.IsNullOrEmpty(key))
        {
            errors.Add(FieldError.Required(path + ".key"));
        }

        if (string.IsNullOrEmpty(op))
        {
            errors.Add(FieldError.Required(path + ".operator"));
        }

        return key is { Length: > 0 } && op is { Length: > 0 } ? (key, op, values) : null;
    }

    private static string? Str(JsonElement v, string path, List<FieldError> errors)
    {
        if (v.ValueKind == JsonValueKind.String)
        {
            return v.GetString();
        }

        if (v.ValueKind != JsonValueKind.Null)
        {
            errors.Add(FieldError.Invalid(path, v.GetRawText(), "must be a string"));
        }

        return null;
    }

    private static Dictionary<string, string>? StringMap(JsonElement v, string path, List<FieldError> errors)
    {
        if (v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Object)
        {
            errors.Add(FieldError.Invalid(path, v.ValueKind.ToString(), "must be a map of strings"));
            return null;
        }

        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind == JsonValueKind.String)
            {
                map[p.Name] = p.Value.GetString()!;
            }
            else
            {
                errors.Add(FieldError.Invalid(path + "." + p.Name, p.Value.GetRawText(), "must be a string"));
            }
        }

        return map;
    }

    private static List<string> StringList(JsonElement v, string path, List<FieldError> errors)
    {
        var list = new List<string>();
        if (v.ValueKind == JsonValueKind.Null)
        {
            return list;
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            errors.Add(FieldError.Invalid(path, v.ValueKind.ToString(), "must be a list of strings"));
            return list;
        }

        var i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind == JsonValueKind.String)
            {
                list.Add(item.GetString()!);
            }
            else
            {
                errors.Add(FieldError.Invalid(string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]"), item.GetRawText(), "must be a string"));
            }

            i++;
        }

        return list;
    }
}
