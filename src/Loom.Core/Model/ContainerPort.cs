namespace Loom.Core.Model;

/// <summary>A pod's container port: what a NetworkPolicy's named port resolves to on that pod.</summary>
public sealed record ContainerPort(string? Name, int Port, Protocol Protocol);
