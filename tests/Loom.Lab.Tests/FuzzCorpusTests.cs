using Loom.Fuzz;

namespace Loom.Lab.Tests;

/// <summary>
/// Replays each fuzz target's seed corpus (tests/Fuzz/corpus/TARGET), so `make test` runs every target without AFL:
/// a seed that crashes a parser, or a target left without seeds, fails here.
/// </summary>
public class FuzzCorpusTests
{
    public static TheoryData<string> Targets => [.. FuzzTargets.All.Keys];

    [Theory]
    [MemberData(nameof(Targets))]
    public void Every_seed_runs_through_its_target(string name)
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "fuzz-corpus", name);
        var seeds = Directory.Exists(dir) ? Directory.GetFiles(dir) : [];
        Assert.NotEmpty(seeds);
        foreach (var seed in seeds)
        {
            var data = File.ReadAllBytes(seed);
            var e = Record.Exception(() => FuzzTargets.All[name](data));
            Assert.True(e is null, $"{Path.GetFileName(seed)}: {e}");
        }
    }
}
