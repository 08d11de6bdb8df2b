using System.Globalization;
using System.Net;
using Loom.Core.Validation;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Loom.Core.Networks;

/// <summary>
/// Errors of one YAML file with where they are: each key read records its position under its field path, so a
/// validation error found later on the built object (a <see cref="FieldError"/>) is shown at its key's line.
/// </summary>
internal sealed class YamlErrors
{
    private readonly Dictionary<string, Mark> _positions = new(StringComparer.Ordinal);
    private readonly List<(Mark At, string Text)> _errors = [];

    public int Count => _errors.Count;

    public void Record(string field, Mark at) => _positions.TryAdd(field, at);

    public void Add(FieldError error, Mark at) => _errors.Add((at, error.ToString()));

    /// <summary>An error on a built object: at its field, or the nearest enclosing field read.</summary>
    public void Add(FieldError error)
    {
        var field = error.Field;
        while (!_positions.ContainsKey(field) && Parent(field) is { } parent)
        {
            field = parent;
        }

        _errors.Add((_positions.TryGetValue(field, out var at) ? at : Mark.Empty, error.ToString()));
    }

    /// <summary>"line L, column C: field: message", in file order.</summary>
    public IEnumerable<string> Rendered() => _errors.OrderBy(e => e.At.Line).ThenBy(e => e.At.Column)
        .Select(e => e.At.Line > 0 ? string.Create(CultureInfo.InvariantCulture, $"line {e.At.Line}, column {e.At.Column}: {e.Text}") : e.Text);

    public void ThrowIfAny()
    {
        if (_errors.Count > 0)
        {
            throw new ClusterFileException([.. Rendered()]);
        }
    }

    private static string? Parent(string field)
    {
        var cut = Math.Max(field.LastIndexOf('.'), field.LastIndexOf('['));
        return cut > 0 ? field[..cut] : field.Length > 0 ? "" : null;
    }
}

/// <summary>A YAML mapping read key by key under a field path; keys never read are errors (strict decoding).</summary>
internal sealed class YamlFields
{
    private readonly YamlMappingNode _node;
    private readonly YamlErrors _errors;
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public YamlFields(YamlMappingNode node, string path, YamlErrors errors)
    {
        _node = node;
        _errors = errors;
        Path = path;
        errors.Record(path, node.Start);
    }

    /// <summary>This mapping's field path ("" at the root, "networks[0]" below).</summary>
    public string Path { get; }

    public string Field(string key) => Path.Length == 0 ? key : Path + "." + key;

    /// <summary>The value under <paramref name="key"/>; null if absent or a plain null (<c>key:</c>, <c>~</c>, <c>null</c>).</summary>
    public YamlNode? Get(string key)
    {
        _used.Add(key);
        foreach (var (k, v) in _node.Children)
        {
            if (k is YamlScalarNode { Value: var name } && name == key)
            {
                _errors.Record(Field(key), k.Start);
                return v is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" } s && s.Tag.IsEmpty ? null : v;
            }
        }

        return null;
    }

    public string? Str(string key)
    {
        var v = Get(key);
        if (v is null or YamlScalarNode)
        {
            return (v as YamlScalarNode)?.Value;
        }

        Error(new FieldError(Field(key), FieldErrorType.Invalid, null, "must be a string"));
        return null;
    }

    public int? Int(string key)
    {
        var s = Str(key);
        if (s is null)
        {
            return null;
        }

        if (int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i))
        {
            return i;
        }

        Error(FieldError.Invalid(Field(key), s, "must be an integer"));
        return null;
    }

    /// <summary>YAML 1.2's booleans only: <c>true</c> and <c>false</c> (not yes/no/on/off).</summary>
    public bool? Bool(string key)
    {
        var s = Str(key);
        switch (s)
        {
            case null:
                return null;
            case "true" or "True" or "TRUE":
                return true;
            case "false" or "False" or "FALSE":
                return false;
            default:
                Error(FieldError.Invalid(Field(key), s, "must be true or false"));
                return null;
        }
    }

    /// <summary>CIDR text without host bits: IPNetwork.TryParse would silently clear them from "10.244.1.7/16".</summary>
    public IPNetwork? Cidr(string key)
    {
        var s = Str(key);
        if (s is null)
        {
            return null;
        }

        var slash = s.IndexOf('/', StringComparison.Ordinal);
        if (slash > 0 && IPNetwork.TryParse(s, out var cidr) && IPAddress.TryParse(s.AsSpan(0, slash), out var address) && address.Equals(cidr.BaseAddress))
        {
            return cidr;
        }

        Error(FieldError.Invalid(Field(key), s, "must be a CIDR without host bits, e.g. 10.244.0.0/16"));
        return null;
    }

    /// <summary>One of <paramref name="values"/>, spelled exactly as the file format spells it.</summary>
    public T? Enum<T>(string key, IReadOnlyDictionary<string, T> values)
        where T : struct
    {
        var s = Str(key);
        if (s is null)
        {
            return null;
        }

        if (values.TryGetValue(s, out var value))
        {
            return value;
        }

        Error(FieldError.NotSupported(Field(key), s, "supported values: " + string.Join(", ", values.Keys.Select(FieldError.Quote))));
        return null;
    }

    public YamlFields? Map(string key)
    {
        var v = Get(key);
        if (v is null)
        {
            return null;
        }

        if (v is YamlMappingNode m)
        {
            return new YamlFields(m, Field(key), _errors);
        }

        Error(new FieldError(Field(key), FieldErrorType.Invalid, null, "must be a mapping"));
        return null;
    }

    public IList<YamlNode>? Seq(string key)
    {
        var v = Get(key);
        if (v is null)
        {
            return null;
        }

        if (v is YamlSequenceNode s)
        {
            return s.Children;
        }

        Error(new FieldError(Field(key), FieldErrorType.Invalid, null, "must be a list"));
        return null;
    }

    public void Required(string key, string detail = "") => _errors.Add(FieldError.Required(Field(key), detail), _node.Start);

    /// <summary>Every key not read is unknown: refused, naming it, so a misspelt setting is never silently dropped.</summary>
    public void Done()
    {
        foreach (var (k, _) in _node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "?";
            if (!_used.Contains(name))
            {
                _errors.Add(new FieldError(Field(name), FieldErrorType.Invalid, null, "unknown field"), k.Start);
            }
        }
    }

    // At the key's position, which Get recorded.
    private void Error(FieldError error) => _errors.Add(error);
}
