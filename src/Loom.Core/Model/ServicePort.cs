namespace Loom.Core.Model;

/// <summary>One port of a Service; <paramref name="NodePort"/> (30000-32767 by default) is 0 for a ClusterIP Service.</summary>
public sealed record ServicePort(string? Name, Protocol Protocol, int Port, int TargetPort, int NodePort = 0);
