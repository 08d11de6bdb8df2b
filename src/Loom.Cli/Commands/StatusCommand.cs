using System.CommandLine;

namespace Loom.Cli.Commands;

/// <summary><c>loom status</c>: the node agent's health, as seen through its socket.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var cmd = new Command("status", "Show the node agent's health, pod CIDR, IPAM use, tunnel peers and endpoints.");
        cmd.SetAction(_ =>
        {
            Console.Error.WriteLine("loom status: not implemented yet");
            return 1;
        });
        return cmd;
    }
}
