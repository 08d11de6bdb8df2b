using System.Runtime.InteropServices;

namespace Loom.Bench;

/// <summary>What every bench mode does around its run: cancel on Ctrl-C, SIGTERM and SIGHUP (so its finally blocks take
/// the lab down), and the header lines that say when, on which commit and on what machine the figures were taken.</summary>
internal static class BenchHost
{
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
