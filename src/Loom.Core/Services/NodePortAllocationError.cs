namespace Loom.Core.Services;

public enum NodePortAllocationError
{
    /// <summary>The requested port belongs to another Service (or to another port pair of the same one).</summary>
    InUse,

    /// <summary>The requested port is outside the node-port range.</summary>
    OutOfRange,

    /// <summary>Every port of the range is taken.</summary>
    Exhausted,
}
