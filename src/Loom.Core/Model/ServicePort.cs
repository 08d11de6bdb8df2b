namespace Loom.Core.Model;

public sealed record ServicePort(string? Name, Protocol Protocol, int Port, int TargetPort);
