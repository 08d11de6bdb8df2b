namespace Loom.Core.Services;

public enum ClusterIpAllocationError
{
    /// <summary>The requested address belongs to another service.</summary>
    InUse,

    /// <summary>The requested address is outside the service CIDR, or its network/broadcast address.</summary>
    OutOfRange,

    /// <summary>Every assignable address is taken.</summary>
    Exhausted,
}
