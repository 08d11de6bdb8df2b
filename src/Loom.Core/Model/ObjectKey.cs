namespace Loom.Core.Model;

/// <summary>Keys of namespaced objects are "namespace/name"; names may not contain '/', so the split is unambiguous.</summary>
public static class ObjectKey
{
    public static string Of(string @namespace, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(@namespace);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (@namespace.Contains('/', StringComparison.Ordinal) || name.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"object names may not contain '/': {@namespace}/{name}");
        }

        return $"{@namespace}/{name}";
    }
}
