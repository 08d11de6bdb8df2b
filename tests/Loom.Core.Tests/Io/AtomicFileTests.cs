using System.Text;
using Loom.Core.Io;
using Loom.Core.Tests.Ipam;

namespace Loom.Core.Tests.Io;

public sealed class AtomicFileTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string[] Names() => [.. Directory.EnumerateFiles(_dir.Path, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(_dir.Path, p)).Order(StringComparer.Ordinal)];

    [Fact]
    public void Write_replaces_the_whole_content_and_leaves_no_temp_file()
    {
        var path = Path.Combine(_dir.Path, "sub", "subnet.env");
        AtomicFile.WriteText(path, "LOOM_SUBNET=10.244.1.1/24\nLOOM_MTU=1450\n");
        AtomicFile.WriteText(path, "short\n");

        Assert.Equal("short\n", File.ReadAllText(path));
        Assert.Equal([Path.Combine("sub", "subnet.env")], Names());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(path));
    }

    [Fact]
    public void A_write_that_fails_at_the_rename_leaves_no_temp_file()
    {
        var path = Path.Combine(_dir.Path, "state");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "inside"), "old");

        // The name is a directory: rename(2) fails; what was there is untouched and the temp file is gone.
        Assert.ThrowsAny<IOException>(() => AtomicFile.WriteText(path, "new"));
        Assert.Equal("old", File.ReadAllText(Path.Combine(path, "inside")));
        Assert.Equal([Path.Combine("state", "inside")], Names());
    }

    [Fact]
    public void TryCreate_claims_a_name_once_with_its_whole_content()
    {
        var path = Path.Combine(_dir.Path, "10.0.0.2");
        Assert.True(AtomicFile.TryCreate(path, Encoding.UTF8.GetBytes("c1\r\neth0")));
        Assert.False(AtomicFile.TryCreate(path, Encoding.UTF8.GetBytes("c2\r\neth0")));

        Assert.Equal("c1\r\neth0", File.ReadAllText(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(["10.0.0.2"], Names());
    }

    [Fact]
    public async Task TryCreate_gives_a_name_to_exactly_one_of_many_racing_writers()
    {
        var path = Path.Combine(_dir.Path, "10.0.0.3");
        var wins = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => AtomicFile.TryCreate(path, Encoding.UTF8.GetBytes($"c{i}\r\neth0")))));

        Assert.Single(wins, w => w);
        Assert.Matches(@"^c\d+\r\neth0$", File.ReadAllText(path));
        Assert.Equal(["10.0.0.3"], Names());
    }

    [Fact]
    public void SyncDirectory_fails_clearly_for_a_missing_directory()
    {
        var e = Assert.ThrowsAny<IOException>(() => AtomicFile.SyncDirectory(Path.Combine(_dir.Path, "nope")));
        Assert.Contains("nope", e.Message, StringComparison.Ordinal);
    }
}
