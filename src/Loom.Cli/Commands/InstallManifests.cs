using System.Text;
using System.Text.RegularExpressions;
using Loom.Core.Networks;

namespace Loom.Cli.Commands;

/// <summary>
/// The Kubernetes manifests of deploy/kubernetes, embedded in loom at build time (the files in the repository are the
/// single source), with the cluster file, the image and the underlay interface substituted as text: no YAML
/// serializer, so the output is the files as written, comments included, and nothing needs reflection.
/// </summary>
internal static partial class InstallManifests
{
    /// <summary>The image the files name; <c>--image</c> replaces it.</summary>
    public const string DefaultImage = "localhost/loom:latest";

    /// <summary>The underlay interface agent.json names; <c>--iface</c> replaces it.</summary>
    public const string DefaultIface = "eth0";

    /// <summary>In apply order: the namespace before what lives in it, the CRD and RBAC before the agent using them.</summary>
    public static readonly IReadOnlyList<string> Files =
        ["00-namespace.yaml", "crds/loomnodes.loom.io.yaml", "rbac.yaml", "configmap.yaml", "daemonset.yaml"];

    private const string ResourcePrefix = "deploy/kubernetes/";
    private const string ClusterKey = "  cluster.yaml: |";
    private const string BlockIndent = "    ";

    /// <summary>Every manifest with its substitutions; throws <see cref="InstallException"/> before rendering any if an input is bad.</summary>
    public static IReadOnlyList<(string File, string Text)> Render(string? clusterYaml, string image, string iface)
    {
        if (!ImageName().IsMatch(image))
        {
            throw new InstallException($"--image {image}: not an image reference (registry/name:tag or @sha256:digest)");
        }

        if (!InterfaceName().IsMatch(iface))
        {
            throw new InstallException($"--iface {iface}: not a network interface name (1-15 letters, digits, '.', '_', '-')");
        }

        var result = new List<(string, string)>(Files.Count);
        foreach (var file in Files)
        {
            var text = Read(file);
            if (file == "configmap.yaml")
            {
                text = WithCluster(text, clusterYaml);
                text = ReplaceExactlyOnce(file, text, $"\"iface\": \"{DefaultIface}\"", $"\"iface\": \"{iface}\"");
            }
            else if (file == "daemonset.yaml")
            {
                text = ReplaceAll(file, text, $"image: {DefaultImage}", $"image: {image}");
            }

            result.Add((file, text));
        }

        return result;
    }

    /// <summary>The documents as one YAML stream, each headed by the file it comes from (as <c>helm template</c> does).</summary>
    public static string Stream(IReadOnlyList<(string File, string Text)> manifests)
    {
        var sb = new StringBuilder();
        foreach (var (file, text) in manifests)
        {
            sb.Append("---\n# Source: ").Append(ResourcePrefix).Append(file).Append('\n').Append(text);
            if (!text.EndsWith('\n'))
            {
                sb.Append('\n');
            }
        }

        return sb.ToString();
    }

    private static string Read(string file)
    {
        using var stream = typeof(InstallManifests).Assembly.GetManifestResourceStream(ResourcePrefix + file)
                           ?? throw new InvalidOperationException($"{ResourcePrefix}{file} is not embedded in loom (Loom.Cli.csproj)");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd().ReplaceLineEndings("\n");
    }

    /// <summary>
    /// The ConfigMap with its <c>cluster.yaml</c> block replaced by <paramref name="clusterYaml"/> (null: the file's own
    /// placeholder), which is validated as <c>loom lab up --config</c> validates a cluster file.
    /// </summary>
    private static string WithCluster(string configMap, string? clusterYaml)
    {
        var lines = configMap.Split('\n').ToList();
        var start = lines.IndexOf(ClusterKey);
        if (start < 0)
        {
            throw new InvalidOperationException($"{ResourcePrefix}configmap.yaml has no line \"{ClusterKey}\"");
        }

        // The block runs while lines are blank or indented deeper than its key.
        var end = start + 1;
        while (end < lines.Count && (lines[end].Length == 0 || lines[end].StartsWith(BlockIndent, StringComparison.Ordinal)))
        {
            end++;
        }

        while (end > start + 1 && lines[end - 1].Length == 0)
        {
            end--;
        }

        var placeholder = string.Join('\n', lines.Skip(start + 1).Take(end - start - 1).Select(l => l.Length == 0 ? l : l[BlockIndent.Length..])) + "\n";
        var cluster = clusterYaml?.ReplaceLineEndings("\n") ?? placeholder;
        try
        {
            ClusterFileParser.Parse(cluster);
        }
        catch (ClusterFileException e) when (clusterYaml is null)
        {
            throw new InvalidOperationException($"{ResourcePrefix}configmap.yaml: its cluster.yaml is not a valid cluster file: {e.Message}", e);
        }

        var body = cluster.TrimEnd('\n').Split('\n');
        // A block scalar takes its indentation from its first line: a file starting indented needs it stated.
        var header = body.FirstOrDefault(l => l.Trim().Length > 0) is { } first && char.IsWhiteSpace(first[0]) ? ClusterKey + "2" : ClusterKey;
        var block = body.Select(l => l.Length == 0 ? l : BlockIndent + l);
        return string.Join('\n', lines.Take(start).Append(header).Concat(block).Concat(lines.Skip(end)));
    }

    private static string ReplaceExactlyOnce(string file, string text, string from, string to)
    {
        var at = text.IndexOf(from, StringComparison.Ordinal);
        if (at < 0 || text.IndexOf(from, at + 1, StringComparison.Ordinal) >= 0)
        {
            throw new InvalidOperationException($"{ResourcePrefix}{file} must hold {from} exactly once");
        }

        return text.Replace(from, to, StringComparison.Ordinal);
    }

    private static string ReplaceAll(string file, string text, string from, string to) =>
        text.Contains(from, StringComparison.Ordinal)
            ? text.Replace(from, to, StringComparison.Ordinal)
            : throw new InvalidOperationException($"{ResourcePrefix}{file} names no {from}");

    // Docker's reference grammar, loosely: no whitespace, quotes or YAML indicators can get through into the manifest.
    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$")]
    private static partial Regex ImageName();

    // The kernel refuses '/', ':' and whitespace in a link name, and more than 15 bytes.
    [GeneratedRegex(@"^[A-Za-z0-9._-]{1,15}$")]
    private static partial Regex InterfaceName();
}

/// <summary>An input of <c>loom install</c> refused; nothing was printed or written.</summary>
internal sealed class InstallException(string message) : Exception(message);
