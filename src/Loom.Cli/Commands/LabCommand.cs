using System.CommandLine;

namespace Loom.Cli.Commands;

/// <summary><c>loom lab ...</c>: the one-machine cluster of network namespaces.</summary>
internal static class LabCommand
{
    public static Command Create()
    {
        var cmd = new Command("lab", "The one-machine lab: a cluster of network namespaces.");
        return cmd;
    }
}
