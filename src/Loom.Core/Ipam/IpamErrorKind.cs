namespace Loom.Core.Ipam;

/// <summary>What went wrong, coarse enough for the CNI layer to pick an error code.</summary>
public enum IpamErrorKind
{
    /// <summary>The IPAM configuration is malformed or inconsistent (CNI code 7).</summary>
    InvalidConfig,

    /// <summary>A range set has no free address left (CNI code 11, or 50 for STATUS).</summary>
    Exhausted,

    /// <summary>A specifically requested IP cannot be given out (CNI code 11).</summary>
    RequestedIpUnavailable,

    /// <summary>The on-disk store could not be read, written or locked (CNI code 5).</summary>
    Io,
}
