using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Loom.Bench;

/// <summary>What every bench mode does around its run: cancel on Ctrl-C, SIGTERM and SIGHUP (so its finally blocks take
/// the lab down), and the header lines that say when, on which commit and on what machine the figures were taken.</summary>
internal static class BenchHost
{
    /// <summary>Parses a mode's options; a bad one is printed as "bench MODE: ..." (the caller exits 2).</summary>
    public static bool TryParse<T>(string mode, string[] args, Func<string[], T> parse, [NotNullWhen(true)] out T? options)
        where T : class
    {
        try
        {
            options = parse(args);
            return true;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"bench {mode}: " + e.Message);
            options = null;
            return false;
        }
    }

    /// <summary>Every mode makes network namespaces: not root is said with <paramref name="why"/> (the caller exits 1).</summary>
    public static bool IsRoot(string mode, string why)
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Console.Error.WriteLine($"bench {mode}: must run as root ({why})");
        }

        return Environment.IsPrivilegedProcess;
    }

    public static int RunCancellable(Func<CancellationToken, Task<int>> run)
    {
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; cts.Cancel(); });
        using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx => { ctx.Cancel = true; cts.Cancel(); });
        return run(cts.Token).GetAwaiter().GetResult();
    }

    public static Machine Header(string title)
    {
        var machine = Machine.Describe();
        Console.WriteLine(title);
        Console.WriteLine($"  date      {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z   commit {Environment.GetEnvironmentVariable("LOOM_BENCH_COMMIT") ?? "?"}");
        Console.WriteLine($"  machine   {machine.Nproc} CPUs, {machine.Cpu}, kernel {machine.Kernel}, {RuntimeInformation.FrameworkDescription}");
        Console.WriteLine($"  load      {machine.LoadAverage} (1/5/15 min)");
        return machine;
    }
}
