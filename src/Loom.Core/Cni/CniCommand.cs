namespace Loom.Core.Cni;

/// <summary>The operation requested through <c>CNI_COMMAND</c>.</summary>
public enum CniCommand
{
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}
