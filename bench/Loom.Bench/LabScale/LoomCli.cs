using System.Diagnostics;
using System.Text;
using Loom.Testing;

namespace Loom.Bench.LabScale;

/// <summary>One run of the <c>loom</c> CLI: exit code (null when it was killed), output, wall time.</summary>
internal sealed record CliRun(string Command, int? ExitCode, string Output, TimeSpan Elapsed)
{
    public bool Ok => ExitCode == 0;

    public bool TimedOut => ExitCode is null;

    public override string ToString() => $"{Command}: {(TimedOut ? "killed (timeout)" : $"exit {ExitCode}")} after {Elapsed.TotalSeconds:0.0} s\n{Tail(Output, 30)}";

    public static string Tail(string text, int lines) => string.Join('\n', text.TrimEnd().Split('\n').TakeLast(lines));
}

/// <summary>
/// out/bin/loom (LOOM_BIN_DIR overrides, as for the tests) as a user runs it, on the bench's lab: <c>loom lab
/// --lab-dir DIR --prefix PREFIX ...</c>. A command still running at its deadline, or when the run is interrupted, is
/// killed by its pid (only that process; what it started in the lab goes with <c>loom lab down</c>).
/// </summary>
internal sealed class LoomCli(string labDir, string prefix)
{
    public static string Loom => Path.Combine(CniRunner.BinDir, "loom");

    public string LabDir { get; } = labDir;

    public string Prefix { get; } = prefix;

    public Task<CliRun> LabAsync(IReadOnlyList<string> args, TimeSpan timeout, CancellationToken ct, string? stdin = null) =>
        RunAsync(["lab", "--lab-dir", LabDir, "--prefix", Prefix, .. args], timeout, ct, stdin);

    public static async Task<CliRun> RunAsync(IReadOnlyList<string> args, TimeSpan timeout, CancellationToken ct, string? stdin = null)
    {
        var psi = new ProcessStartInfo(Loom)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var text = "loom " + string.Join(' ', args);
        var output = new StringBuilder();
        var sw = Stopwatch.StartNew();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => Append(output, e.Data);
        p.ErrorDataReceived += (_, e) => Append(output, e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin.AsMemory(), ct).ConfigureAwait(false);
            p.StandardInput.Close();
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await p.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
            await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false); // drains the output events
            return new CliRun(text, p.ExitCode, Text(output), sw.Elapsed);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: false);
            await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            ct.ThrowIfCancellationRequested();
            return new CliRun(text, null, Text(output), sw.Elapsed);
        }
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.Append(line).Append('\n');
        }
    }

    private static string Text(StringBuilder output)
    {
        lock (output)
        {
            return output.ToString();
        }
    }
}
