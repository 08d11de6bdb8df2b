namespace Loom.Core.Cni;

/// <summary>What a plugin run produced.</summary>
public sealed record PluginRunResult(int ExitCode, byte[] Stdout, byte[] Stderr);
