using System.CommandLine;
using Loom.Core.Networks;

namespace Loom.Cli.Commands;

/// <summary>
/// <c>loom install kubernetes --dry-run</c>: prints the manifests that run Loom on a Kubernetes cluster (namespace,
/// LoomNode CRD, RBAC, ConfigMap with the cluster file, the agent's DaemonSet), as <c>cilium install --dry-run</c>
/// does; applying them is kubectl's job for now.
/// </summary>
internal static class InstallCommand
{
    public static Command Create() => new("install", "Install Loom on a cluster manager.") { Kubernetes() };

    private static Command Kubernetes()
    {
        var dryRun = new Option<bool>("--dry-run") { Description = "Print the manifests instead of applying them (applying is not implemented: pipe them to kubectl apply -f -)." };
        var cluster = new Option<FileInfo?>("--cluster") { Description = "The cluster file put in the ConfigMap (see examples/cluster); default: Flannel's VXLAN network on 10.244.0.0/16." };
        var image = new Option<string>("--image") { Description = "The agent's image.", DefaultValueFactory = _ => InstallManifests.DefaultImage };
        var iface = new Option<string>("--iface") { Description = "The nodes' underlay interface (the one holding each node's InternalIP).", DefaultValueFactory = _ => InstallManifests.DefaultIface };
        var output = new Option<DirectoryInfo?>("--output") { Description = "Write the manifests into this directory (as deploy/kubernetes lays them out) instead of printing them." };
        var cmd = new Command("kubernetes", "The manifests that run Loom's agent as a DaemonSet, for the cluster file given.")
        {
            dryRun, cluster, image, iface, output,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            if (!parse.GetValue(dryRun))
            {
                await Console.Error.WriteLineAsync("loom install kubernetes: applying needs a live API server and is not implemented; "
                    + "print the manifests and apply them: loom install kubernetes --dry-run | kubectl apply -f -").ConfigureAwait(false);
                return 2;
            }

            string? clusterYaml = null;
            var path = parse.GetValue(cluster);
            IReadOnlyList<(string File, string Text)> manifests;
            try
            {
                if (path is not null)
                {
                    clusterYaml = await File.ReadAllTextAsync(path.FullName, ct).ConfigureAwait(false);
                }

                manifests = InstallManifests.Render(clusterYaml, parse.GetValue(image)!, parse.GetValue(iface)!);
            }
            catch (ClusterFileException e)
            {
                await Console.Error.WriteLineAsync($"loom install kubernetes: {path}: {e.Message.Replace("\n", $"\n{path}: ", StringComparison.Ordinal)}").ConfigureAwait(false);
                return 2;
            }
            catch (Exception e) when (e is InstallException or IOException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync($"loom install kubernetes: {e.Message}").ConfigureAwait(false);
                return 2;
            }

            if (parse.GetValue(output) is { } dir)
            {
                foreach (var (file, text) in manifests)
                {
                    var target = Path.Combine(dir.FullName, file);
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    await File.WriteAllTextAsync(target, text, ct).ConfigureAwait(false);
                    Console.WriteLine(target);
                }

                return 0;
            }

            await Console.Out.WriteAsync(InstallManifests.Stream(manifests)).ConfigureAwait(false);
            await Console.Out.FlushAsync(ct).ConfigureAwait(false);
            return 0;
        });
        return cmd;
    }
}
