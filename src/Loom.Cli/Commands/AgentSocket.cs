using System.CommandLine;
using Loom.Core.AgentApi;
using Loom.Lab;

namespace Loom.Cli.Commands;

/// <summary>
/// Which agent a CLI command talks to: <c>--socket PATH</c>, or <c>--node NAME</c> of the running lab (a unix socket
/// path reaches an agent in any network namespace), or the default socket of the machine's own agent.
/// </summary>
internal static class AgentSocket
{
    public const string DefaultPath = "/run/loom/agent.sock";

    public static Option<string?> SocketOption() => new("--socket") { Description = $"The agent's socket (default {DefaultPath})." };

    public static Option<string?> NodeOption() => new("--node") { Description = "A node of the running lab (loom lab up)." };

    public static string Resolve(string? socket, string? node, string labDir = Loom.Lab.LabOptions.DefaultLabDir)
    {
        if (socket is not null)
        {
            return socket;
        }

        if (node is null)
        {
            return DefaultPath;
        }

        var state = Lab.Lab.Load(labDir) ?? throw new InvalidOperationException($"--node {node}: no lab is up (loom lab up)");
        if (!state.Nodes.Any(n => n.Name == node))
        {
            throw new InvalidOperationException($"--node {node}: the lab has no such node ({string.Join(", ", state.Nodes.Select(n => n.Name))})");
        }

        return Lab.Lab.AgentSocket(state, node);
    }

    /// <summary>
    /// <c>loom status</c>'s exchange (a probe, run often): as <see cref="AskAsync(string, string?, string?, AgentRequest, CancellationToken)"/>,
    /// but with blocking socket calls, the request line written out and the answer read as a <see cref="StatusReply"/>.
    /// An async socket starts the runtime's socket thread, and an <see cref="AgentRequest"/> or
    /// <see cref="AgentResponse"/> builds the JSON metadata of every op's fields: a third of the command's CPU together
    /// (perf; bench/README.md, "Idle agent and loom status").
    /// </summary>
    public static StatusReply? AskStatus(string? socket, string? node)
    {
        const string command = "loom status";
        if (TryResolve(command, socket, node, Loom.Lab.LabOptions.DefaultLabDir) is not { } path)
        {
            return null;
        }

        try
        {
            var reply = AgentClient.ExchangeLine(path, "{\"op\":\"status\"}\n"u8, TimeSpan.FromSeconds(10));
            var response = System.Text.Json.JsonSerializer.Deserialize(reply, CliJsonContext.Default.StatusReply)
                           ?? throw new IOException($"agent at {path} sent an empty answer");
            if (!response.Ok)
            {
                Console.Error.WriteLine($"{command}: {response.Error}");
                return null;
            }

            return response;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            Console.Error.WriteLine($"{command}: no agent answers at {path}: {e.Message}");
            return null;
        }
    }

    /// <summary>The socket path; null (the reason printed to stderr) when <paramref name="node"/> names no lab node.</summary>
    private static string? TryResolve(string command, string? socket, string? node, string labDir)
    {
        try
        {
            return Resolve(socket, node, labDir);
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"{command}: {e.Message}");
            return null;
        }
    }

    /// <summary>Sends one request; on failure prints why to stderr and returns null.</summary>
    public static Task<AgentResponse?> AskAsync(string command, string? socket, string? node, AgentRequest request, CancellationToken ct) =>
        AskAsync(command, socket, node, Loom.Lab.LabOptions.DefaultLabDir, request, ct);

    /// <summary>As above, <paramref name="node"/> a node of the lab in <paramref name="labDir"/>.</summary>
    public static async Task<AgentResponse?> AskAsync(string command, string? socket, string? node, string labDir, AgentRequest request, CancellationToken ct)
    {
        if (TryResolve(command, socket, node, labDir) is not { } path)
        {
            return null;
        }

        try
        {
            var response = await AgentClient.SendAsync(path, request, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            if (!response.Ok)
            {
                await Console.Error.WriteLineAsync($"{command}: {response.Error}").ConfigureAwait(false);
                return null;
            }

            return response;
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            await Console.Error.WriteLineAsync($"{command}: no agent answers at {path}: {e.Message}").ConfigureAwait(false);
            return null;
        }
    }
}
