using System.CommandLine;
using System.Net;
using Loom.Lab;
using Loom.Lab.Connectivity;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom connectivity test</c> and <c>loom lab connectivity test</c>: Cilium's connectivity test against the lab
/// (Loom has no pod runtime of its own outside the lab yet, so both need a running lab). Exit 0 when every test that
/// ran passed, 1 when one failed, 2 on bad arguments.
/// </summary>
internal static class ConnectivityCommand
{
    /// <summary>Where an external target may be: the lab's underlay (nothing leaves the lab).</summary>
    private static readonly IPNetwork Underlay = new(IPAddress.Parse(Lab.Lab.UnderlayRouter), 24);

    /// <summary>The top-level <c>loom connectivity</c>; <paramref name="labDir"/> is given as its own option.</summary>
    public static Command Create() => Group("loom connectivity test", withLabDir: true);

    /// <summary><c>loom lab connectivity</c>, under <c>lab</c>'s recursive --lab-dir.</summary>
    public static Command LabGroup() => Group("loom lab connectivity test", withLabDir: false);

    private static Command Group(string name, bool withLabDir)
    {
        var tests = new Option<string[]>("--test")
        {
            Description = "Run only these tests (a name, a prefix such as pod-to-pod, or a group: no-policies, policies); '!NAME' leaves one out. Repeatable.",
            AllowMultipleArgumentsPerToken = false,
        };
        var external = new Option<string?>("--external-target")
        {
            Description = "Adds pod-to-world against this address inside the lab's underlay (IP, or IP:PORT for a TCP connect too), e.g. a server on 192.168.10.1.",
        };
        var test = new Command("test", "Deploy client and echo pods in namespace loom-connectivity-test, run the connectivity scenarios, print the summary, remove everything.")
        {
            tests, external,
        };
        if (withLabDir)
        {
            test.Options.Add(LabCommand.LabDir);
        }

        test.SetAction((parse, ct) => RunAsync(name, parse.GetValue(LabCommand.LabDir)!, parse.GetValue(tests) ?? [], parse.GetValue(external), ct));
        return new Command("connectivity", "Connectivity checks over the lab (Cilium's connectivity test).") { test };
    }

    private static async Task<int> RunAsync(string name, string labDir, string[] tests, string? external, CancellationToken ct)
    {
        ConnectivityOptions options;
        try
        {
            options = new ConnectivityOptions { Selection = ConnectivitySelection.Parse(tests), ExternalTarget = external is null ? null : Target(external) };
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"{name}: {e.Message}").ConfigureAwait(false);
            return 2;
        }

        if (Lab.Lab.Load(labDir) is not { } state)
        {
            await Console.Error.WriteLineAsync($"{name}: needs a running lab (no {LabState.StateFile(labDir)}): the test deploys its own pods, and Loom runs pods only in the lab yet; start one with `loom lab up`")
                .ConfigureAwait(false);
            return 1;
        }

        return await LabCommand.Guard(async () =>
        {
            var report = await ConnectivityTest.RunAsync(state, options, Console.Out, ct).ConfigureAwait(false);
            return report.Success ? 0 : 1;
        }).ConfigureAwait(false);
    }

    private static IPEndPoint Target(string text)
    {
        if (!IPEndPoint.TryParse(text, out var target) || target.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
        {
            throw new ArgumentException($"--external-target '{text}': an IPv4 address or IPv4:PORT expected");
        }

        return Underlay.Contains(target.Address)
            ? target
            : throw new ArgumentException($"--external-target {target.Address} is not inside the lab: give an address on its underlay ({Underlay}), e.g. {Lab.Lab.UnderlayRouter}; nothing leaves the lab");
    }
}
