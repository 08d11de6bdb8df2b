using Loom.Testing;

namespace Loom.Package.Tests;

/// <summary>Builds the .deb once with scripts/package.sh from this checkout's out/bin and out/bpf (make build).</summary>
public sealed class PackageFixture : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("loom-pkg-test-").FullName;

    public PackageFixture()
    {
        Repo = FindRepo();
        BinDir = Environment.GetEnvironmentVariable("LOOM_BIN_DIR") is { Length: > 0 } env ? env : Path.Combine(Repo, "out", "bin");
        if (DebRoot.Which("dpkg-deb") is null || DebRoot.Which("dpkg-shlibdeps") is null)
        {
            return; // every test is skipped (PackageFactAttribute)
        }

        var run = Shell.Run(Path.Combine(Repo, "scripts", "package.sh"), ["--out", _dir],
            new Dictionary<string, string> { ["LOOM_BIN_DIR"] = BinDir }, TimeSpan.FromMinutes(5));
        BuildLog = run.ToString();
        Deb = Directory.GetFiles(_dir, "loom_*.deb").SingleOrDefault();
    }

    public string Repo { get; }

    public string BinDir { get; }

    public string BuildLog { get; } = "";

    /// <summary>The built package; null if scripts/package.sh failed (<see cref="BuildLog"/> says why).</summary>
    public string? Deb { get; }

    public string RequireDeb() => Deb ?? throw new InvalidOperationException("scripts/package.sh made no .deb:\n" + BuildLog);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string FindRepo()
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
