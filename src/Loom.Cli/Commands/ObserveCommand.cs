using System.CommandLine;
using System.CommandLine.Parsing;
using Loom.Core.AgentApi;
using Loom.Core.Flows;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom observe</c> (and <c>loom lab observe</c>), as <c>hubble observe</c>: the recent flows of every node's agent
/// (the lab's, or the agent at <c>--socket</c>) merged by time, filtered, printed compact, as a table or as JSON;
/// <c>--follow</c> keeps asking each agent for what came after the last flow it sent. Partial file: .Query (the
/// filter flags, <c>--not</c> included).
/// </summary>
internal static partial class ObserveCommand
{
    private static readonly TimeSpan FollowInterval = TimeSpan.FromMilliseconds(250);

    public static Command Create() => Build("observe", "Show the datapath's flows (as hubble observe): the last 20 of every node, filtered; --follow streams.", lab: false);

    public static Command Lab() => Build("observe", "loom observe over every node of the running lab.", lab: true);

    private static Command Build(string name, string description, bool lab)
    {
        var filters = Filters();
        var last = new Option<int?>("--last") { Description = "Show this many of the newest flows (0: all the agents keep); 20 unless --since or --follow is given." };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new flows (every 250 ms) until Ctrl-C; from now unless --last or --since says otherwise." };
        var output = new Option<string>("--output", "-o") { Description = "compact (one line per flow), table or json (one object per line).", DefaultValueFactory = _ => "compact" };
        output.AcceptOnlyFromAmong("compact", "table", "json");
        var socket = AgentSocket.SocketOption();
        var cmd = new Command(name, description) { last, follow, output, NotOption };
        foreach (var f in filters)
        {
            cmd.Options.Add(f.Option);
        }

        if (!lab)
        {
            cmd.Options.Add(socket);
            cmd.Options.Add(LabCommand.LabDir);
        }

        cmd.SetAction(async (parse, ct) =>
        {
            FlowQuery query;
            try
            {
                var now = DateTimeOffset.UtcNow;
                query = Query(parse, filters, now);
                // As hubble: 20 by default; with --since all since then; following with neither, from now on.
                query = parse.GetValue(last) switch
                {
                    < 0 and var n => throw new FormatException($"--last {n}: give 0 (all) or more"),
                    { } n => query with { Last = n },
                    null when query.Since is not null => query with { Last = 0 },
                    null when parse.GetValue(follow) => query with { Last = 0, Since = now },
                    null => query with { Last = 20 },
                };
                if (parse.GetValue(follow) && parse.GetValue(output) == "table")
                {
                    throw new FormatException("-o table cannot --follow (its columns are sized to what is printed); use compact or json");
                }
            }
            catch (FormatException e)
            {
                await Console.Error.WriteLineAsync($"loom observe: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            var agents = Agents(lab ? null : parse.GetValue(socket), parse.GetValue(LabCommand.LabDir)!, query.Include.Nodes, lab);
            if (agents is null)
            {
                return 2;
            }

            var printer = new FlowPrinter(parse.GetValue(output)!);
            try
            {
                return await RunAsync(agents, query, parse.GetValue(follow), printer, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return 0; // Ctrl-C ends --follow
            }
        });
        return cmd;
    }

    /// <summary>The agents to ask: the one at --socket; else every node of the running lab (those of --node when given); else the default socket.</summary>
    private static List<(string Name, string Socket)>? Agents(string? socket, string labDir, IReadOnlyList<string> nodes, bool labOnly)
    {
        if (socket is not null)
        {
            return [(socket, socket)];
        }

        if (Loom.Lab.Lab.Load(labDir) is not { } state)
        {
            if (labOnly)
            {
                Console.Error.WriteLine("loom lab observe: no lab is up (loom lab up)");
                return null;
            }

            return [(AgentSocket.DefaultPath, AgentSocket.DefaultPath)];
        }

        var unknown = nodes.Where(n => !state.Nodes.Any(s => s.Name == n)).ToList();
        if (unknown.Count > 0)
        {
            Console.Error.WriteLine($"loom observe: --node {string.Join(", ", unknown)}: the lab has no such node ({string.Join(", ", state.Nodes.Select(n => n.Name))})");
            return null;
        }

        return [.. state.Nodes.Where(n => nodes.Count == 0 || nodes.Contains(n.Name)).Select(n => (n.Name, Loom.Lab.Lab.AgentSocket(state, n.Name)))];
    }

    /// <summary>
    /// Where a follower is with one agent: the numbering (agent run) and the last flow it printed, the losses the agent
    /// had reported at its first answer (only increases are news) and whether it answered yet (until then it is asked as
    /// at the start, so a late agent does not dump its whole history).
    /// </summary>
    private sealed class AgentPosition
    {
        public bool Answered { get; set; }

        public string? Instance { get; set; }

        public long AfterSeq { get; set; }

        public long? Lost { get; set; }
    }

    private static async Task<int> RunAsync(List<(string Name, string Socket)> agents, FlowQuery query, bool follow, FlowPrinter printer, CancellationToken ct)
    {
        var at = agents.ToDictionary(a => a.Socket, _ => new AgentPosition(), StringComparer.Ordinal);
        var failing = new HashSet<string>(StringComparer.Ordinal);
        var first = true;
        while (true)
        {
            var asks = agents.Select(a => AskAsync(a, at[a.Socket].Answered ? query with { AfterSeq = at[a.Socket].AfterSeq, Last = 0 } : query, ct)).ToList();
            var answers = await Task.WhenAll(asks).ConfigureAwait(false);
            var flows = new List<Flow>();
            foreach (var (agent, response, error) in answers)
            {
                if (response is null)
                {
                    if (failing.Add(agent.Socket))
                    {
                        await Console.Error.WriteLineAsync($"loom observe: {agent.Name}: {error}").ConfigureAwait(false);
                    }

                    continue;
                }

                failing.Remove(agent.Socket);
                var pos = at[agent.Socket];
                if (pos.Answered && response.FlowsInstance != pos.Instance)
                {
                    // The agent restarted and numbers anew: what it sent is after a number of the old run; ask for
                    // everything the new run kept (all of it is newer than what was printed).
                    await Console.Error.WriteLineAsync($"loom observe: {agent.Name}: the agent restarted; following its new flows").ConfigureAwait(false);
                    (pos.Instance, pos.AfterSeq, pos.Lost) = (response.FlowsInstance, 0, null);
                    continue;
                }

                var got = response.Flows ?? [];
                flows.AddRange(got);
                pos.Instance = response.FlowsInstance;
                pos.AfterSeq = got.Count > 0 ? got.Max(f => f.Seq) : pos.AfterSeq;
                if (response.FlowsCapped == true && !pos.Answered)
                {
                    await Console.Error.WriteLineAsync($"loom observe: {agent.Name}: more flows matched than one answer carries; showing the newest (narrow with filters, --since or --last)").ConfigureAwait(false);
                }

                pos.Answered = true;
                if (response.LostEvents is { } n)
                {
                    if (pos.Lost is { } seen && n > seen)
                    {
                        await Console.Error.WriteLineAsync($"EVENTS LOST: {agent.Name}: {n - seen} flow events the datapath could not hand over").ConfigureAwait(false);
                    }

                    pos.Lost = Math.Max(n, pos.Lost ?? 0);
                }
            }

            // Each agent sent its newest; together, the newest of them all, oldest first.
            var merged = flows.OrderBy(f => f.Time).ThenBy(f => f.Node, StringComparer.Ordinal).ThenBy(f => f.Seq).ToList();
            if (first && query.Last > 0 && merged.Count > query.Last)
            {
                merged = merged[^query.Last..];
            }

            printer.Print(merged);
            if (first && failing.Count == agents.Count)
            {
                return 1;
            }

            if (!follow)
            {
                return 0;
            }

            first = false;
            await Task.Delay(FollowInterval, ct).ConfigureAwait(false);
        }
    }

    private static async Task<((string Name, string Socket) Agent, AgentResponse? Response, string? Error)> AskAsync(
        (string Name, string Socket) agent, FlowQuery query, CancellationToken ct)
    {
        try
        {
            var response = await AgentClient.SendAsync(agent.Socket, new AgentRequest { Op = "flows", Flows = query }, TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            return response.Ok ? (agent, response, null) : (agent, null, response.Error);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return (agent, null, $"no agent answers at {agent.Socket}: {e.Message}");
        }
    }

    /// <summary>Prints batches of flows in one format; a table's header once.</summary>
    private sealed class FlowPrinter(string format)
    {
        private bool _header;

        public void Print(List<Flow> flows)
        {
            if (format == "json")
            {
                flows.ForEach(f => Console.WriteLine(FlowFormat.Json(f)));
                return;
            }

            var local = flows.Select(f => f with { Time = f.Time.ToLocalTime() }).ToList();
            if (format == "compact")
            {
                local.ForEach(f => Console.WriteLine(FlowFormat.Compact(f)));
                return;
            }

            if (local.Count == 0)
            {
                return;
            }

            var rows = local.Select(f => FlowFormat.TableRow(f).ToArray()).ToList();
            var widths = FlowFormat.TableHeader.Select((h, i) => Math.Max(h.Length, rows.Max(r => r[i].Length)) + 3).ToArray();
            if (!_header)
            {
                Console.WriteLine(string.Concat(FlowFormat.TableHeader.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
                _header = true;
            }

            rows.ForEach(r => Console.WriteLine(string.Concat(r.Select((v, i) => v.PadRight(widths[i]))).TrimEnd()));
        }
    }
}
