using Loom.Fuzz;
using SharpFuzz;

// loom-fuzz TARGET                                  run under afl-fuzz (SharpFuzz's persistent mode; once on stdin without AFL)
// loom-fuzz --mutate TARGET SECONDS CORPUS FINDINGS  no AFL: the in-process random mutation loop (no coverage feedback)
switch (args)
{
    case [var name] when FuzzTargets.All.TryGetValue(name, out var target):
        Fuzzer.Run(stream =>
        {
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            target(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        });
        return 0;
    case ["--mutate", var name, var seconds, var corpus, var findings] when FuzzTargets.All.TryGetValue(name, out var target):
        return MutationLoop.Run(target, TimeSpan.FromSeconds(int.Parse(seconds, System.Globalization.CultureInfo.InvariantCulture)), corpus, findings);
    default:
        await Console.Error.WriteLineAsync($"usage: loom-fuzz TARGET | --mutate TARGET SECONDS CORPUS FINDINGS\ntargets: {string.Join(", ", FuzzTargets.All.Keys)}");
        return 2;
}
