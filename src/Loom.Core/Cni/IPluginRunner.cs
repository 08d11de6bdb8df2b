namespace Loom.Core.Cni;

/// <summary>Runs a plugin binary; an interface so delegation logic can be tested without processes.</summary>
public interface IPluginRunner
{
    /// <summary>
    /// Runs <paramref name="path"/> with exactly <paramref name="environment"/> (nothing inherited),
    /// feeds <paramref name="stdin"/>, and waits for exit.
    /// </summary>
    Task<PluginRunResult> RunAsync(string path, ReadOnlyMemory<byte> stdin, IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken);
}
