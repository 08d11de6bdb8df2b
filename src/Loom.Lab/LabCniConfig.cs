namespace Loom.Lab;

/// <summary>
/// The CNI config a runtime wires a node's new pods with: as containerd and CRI-O do (libcni's <c>ConfFiles</c>),
/// the first file by name in the node's CNI directory ending in .conflist, .conf or .json. A config renamed away
/// (<c>*.loom_bak</c>, as Cilium's <c>cni.exclusive</c> renames to <c>*.cilium_bak</c>) ends otherwise and is never picked.
/// </summary>
internal static class LabCniConfig
{
    private static readonly string[] Extensions = [".conflist", ".conf", ".json"];

    /// <summary>The file the runtime would use, or null while the directory holds none (the node is not ready).</summary>
    internal static string? Find(string dir) =>
        Directory.Exists(dir)
            ? Directory.EnumerateFiles(dir).Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.Ordinal)).Order(StringComparer.Ordinal).FirstOrDefault()
            : null;

    /// <summary>
    /// The file the runtime would use and its content. The agent may rename it away between the listing and the read
    /// (the node's primary network changed): then the directory is looked at again, as a runtime's next attempt would.
    /// </summary>
    internal static (string Path, string Json) Read(LabState state, string node)
    {
        for (var attempt = 1; ; attempt++)
        {
            var path = Require(state, node);
            try
            {
                return (path, File.ReadAllText(path));
            }
            catch (FileNotFoundException) when (attempt < 5)
            {
            }
            catch (FileNotFoundException)
            {
                throw new LabException($"{path} vanished as it was read, {attempt} times: the CNI config of node {node} keeps changing");
            }
        }
    }

    /// <summary>As <see cref="Find"/>, or a clear error naming the directory.</summary>
    internal static string Require(LabState state, string node) =>
        Find(state.CniConfDir(node)) ?? throw new LabException($"no CNI config (*.conflist, *.conf, *.json) in {state.CniConfDir(node)}: node {node} is not ready");
}
