namespace Loom.Datapath.Services;

/// <summary>
/// One port of one service, named as kube-proxy names it: <c>namespace/name:port</c>, or <c>namespace/name</c> when the
/// port is unnamed. This string is what chain names are hashed from and what rule comments show.
/// </summary>
public readonly record struct ServicePortName(string Namespace, string Name, string? Port)
{
    public override string ToString() => string.IsNullOrEmpty(Port) ? $"{Namespace}/{Name}" : $"{Namespace}/{Name}:{Port}";
}
