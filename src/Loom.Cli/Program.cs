using System.CommandLine;
using Loom.Cli.Commands;

// loom: one executable for the node agent, the operator's CLI and the one-machine lab.
if (args is ["agnhost", ..])
{
    return await AgnhostCommand.RunAsync(args[1..]).ConfigureAwait(false);
}

var root = new RootCommand("Loom: container networking for Linux clusters (CNI, overlay, services).");
// `loom status` (a probe, run often) and `loom agent` (every node's start) build only their own command: building every
// command's options costs a native start more than the rest of a status call.
if (args is ["status", ..])
{
    root.Subcommands.Add(StatusCommand.Create());
    return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
}

if (args is ["agent", ..])
{
    root.Subcommands.Add(AgentCommand.Create());
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) }).ConfigureAwait(false);
}

root.Subcommands.Add(AgentCommand.Create());
root.Subcommands.Add(StatusCommand.Create());
root.Subcommands.Add(NodeCommand.Create());
root.Subcommands.Add(NetworkCommand.Create());
root.Subcommands.Add(MigrateCommand.Create());
root.Subcommands.Add(ServiceCommand.List());
root.Subcommands.Add(ServiceCommand.Explain());
root.Subcommands.Add(PolicyCommand.Policies());
root.Subcommands.Add(PolicyCommand.Identities());
root.Subcommands.Add(ObserveCommand.Create());
root.Subcommands.Add(LabCommand.Create());
root.Subcommands.Add(ConnectivityCommand.Create());
root.Subcommands.Add(WhoamiCommand.Create());
root.Subcommands.Add(DnsCommand.Create());
root.Subcommands.Add(InstallCommand.Create());
// After Ctrl-C or SIGTERM a command gets this long to finish its cleanup (the connectivity test removes its pods) before
// the process ends anyway (System.CommandLine's default is 2 s).
var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(30) };
return await root.Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
