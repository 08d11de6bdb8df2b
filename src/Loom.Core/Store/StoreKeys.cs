namespace Loom.Core.Store;

/// <summary>Kinds are lower-case path-safe words; keys are free text without control characters.</summary>
public static class StoreKeys
{
    public static void ValidateKind(string kind)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        foreach (var c in kind)
        {
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-'))
            {
                throw new ArgumentException($"kind must be [a-z0-9-]+: '{kind}'", nameof(kind));
            }
        }
    }

    public static void ValidateKey(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Any(char.IsControl))
        {
            throw new ArgumentException("key may not contain control characters", nameof(key));
        }
    }
}
