using System.Diagnostics;
using k8s;

namespace Loom.Deploy.Tests;

/// <summary>The checkout's deploy/kubernetes files and its built loom (out/bin; LOOM_BIN_DIR overrides).</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string ManifestDir => Path.Combine(Root, "deploy", "kubernetes");

    public static string Loom => Path.Combine(Environment.GetEnvironmentVariable("LOOM_BIN_DIR") is { Length: > 0 } d ? d : Path.Combine(Root, "out", "bin"), "loom");

    /// <summary>Every manifest file, relative to deploy/kubernetes ("crds/loomnodes.loom.io.yaml").</summary>
    public static IReadOnlyList<string> ManifestFiles() =>
        [.. Directory.EnumerateFiles(ManifestDir, "*.yaml", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(ManifestDir, f)).Order(StringComparer.Ordinal)];

    /// <summary>
    /// Objects of a YAML stream as the client's typed models (V1DaemonSet, V1ClusterRole, ...). Strict: a field the
    /// model does not have (a misspelt key) throws instead of being dropped.
    /// </summary>
    public static List<object> Parse(string yaml) => KubernetesYaml.LoadAllFromString(yaml, strict: true);

    public static List<object> ParseFile(string relative) => Parse(File.ReadAllText(Path.Combine(ManifestDir, relative)));

    public static List<object> AllFiles() => [.. ManifestFiles().SelectMany(ParseFile)];

    public static T Single<T>(IEnumerable<object> objects) => Assert.Single(objects.OfType<T>());

    public static (int Code, string Stdout, string Stderr) RunLoom(params string[] args)
    {
        Assert.True(File.Exists(Loom), $"{Loom} is missing: run `make build` first");
        var psi = new ProcessStartInfo(Loom) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(60_000), "loom did not exit within 60 s");
        return (p.ExitCode, stdout, stderr.Result);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Loom.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("cannot find the repository root (Loom.slnx) above " + AppContext.BaseDirectory);
    }
}
