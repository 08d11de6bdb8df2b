using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>
/// Typed, path-aware reads from a JSON object with Go encoding/json semantics: keys match
/// case-insensitively, the last matching key wins, and null reads as absent. Failures throw
/// <see cref="CniException"/> with the caller's code and the full key path.
/// </summary>
internal readonly struct JsonFields
{
    private readonly JsonElement _element;
    private readonly string _path;
    private readonly uint _code;
    private readonly string _msg;

    public JsonFields(JsonElement element, string path, uint code, string msg)
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new CniException(code, msg, $"{(path.Length == 0 ? "document" : $"key \"{path}\"")}: expected an object, got {element.ValueKind}");
        }

        _element = element;
        _path = path;
        _code = code;
        _msg = msg;
    }

    public JsonElement Element => _element;

    public JsonElement? Get(string key)
    {
        JsonElement? found = null;
        foreach (var p in _element.EnumerateObject())
        {
            if (string.Equals(Text(() => p.Name, _path), key, StringComparison.OrdinalIgnoreCase))
            {
                found = p.Value;
            }
        }

        return found is { ValueKind: JsonValueKind.Null } ? null : found;
    }

    public string? GetString(string key) => Get(key) is { } v ? AsString(v, Path(key)) : null;

    public string RequireString(string key) =>
        GetString(key) is { Length: > 0 } s ? s : throw Fail(Path(key), "missing required key");

    public bool? GetBool(string key) => Get(key) switch
    {
        null => null,
        { ValueKind: JsonValueKind.True } => true,
        { ValueKind: JsonValueKind.False } => false,
        { } v => throw Fail(Path(key), $"expected a boolean, got {v.ValueKind}"),
    };

    public int? GetInt(string key)
    {
        if (Get(key) is not { } v)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i)
            ? i
            : throw Fail(Path(key), $"expected an integer, got {Describe(v)}");
    }

    public JsonFields? GetObject(string key) => Get(key) is { } v ? new JsonFields(v, Path(key), _code, _msg) : null;

    public IReadOnlyList<JsonFields>? GetObjectArray(string key)
    {
        if (Get(key) is not { } v)
        {
            return null;
        }

        var path = Path(key);
        var array = ExpectArray(v, path);
        var list = new List<JsonFields>(array.GetArrayLength());
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            list.Add(new JsonFields(item, $"{path}[{i++}]", _code, _msg));
        }

        return list;
    }

    public IReadOnlyList<string>? GetStringArray(string key)
    {
        if (Get(key) is not { } v)
        {
            return null;
        }

        var path = Path(key);
        var list = new List<string>();
        var i = 0;
        foreach (var item in ExpectArray(v, path).EnumerateArray())
        {
            list.Add(AsString(item, $"{path}[{i++}]"));
        }

        return list;
    }

    public CniException Fail(string path, string problem) => new(_code, _msg, $"key \"{path}\": {problem}");

    public string Path(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

    private JsonElement ExpectArray(JsonElement v, string path) =>
        v.ValueKind == JsonValueKind.Array ? v : throw Fail(path, $"expected an array, got {v.ValueKind}");

    private string AsString(JsonElement v, string path) =>
        v.ValueKind == JsonValueKind.String ? Text(() => v.GetString()!, path) : throw Fail(path, $"expected a string, got {v.ValueKind}");

    // Escapes are decoded only when a string is read: a lone surrogate (\ud800) fails there, as InvalidOperationException.
    private string Text(Func<string> read, string path)
    {
        try
        {
            return read();
        }
        catch (InvalidOperationException e)
        {
            throw Fail(path.Length == 0 ? "document" : path, $"invalid text: {e.Message}");
        }
    }

    private static string Describe(JsonElement v) => v.ValueKind == JsonValueKind.Number ? v.GetRawText() : v.ValueKind.ToString();
}
