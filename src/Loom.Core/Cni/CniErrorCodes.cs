namespace Loom.Core.Cni;

/// <summary>Well-known CNI error codes (spec section 5, "Error"). 0-99 are reserved by the spec.</summary>
public static class CniErrorCodes
{
    /// <summary>Error of unknown kind, e.g. a delegated plugin that failed without a parsable error.</summary>
    public const uint Unknown = 0;
    public const uint IncompatibleCniVersion = 1;
    /// <summary>The message must contain the key and value of the unsupported field.</summary>
    public const uint UnsupportedField = 2;
    /// <summary>Tells the runtime no network cleanup (DEL) is needed.</summary>
    public const uint UnknownContainer = 3;
    /// <summary>The message must name the invalid variables.</summary>
    public const uint InvalidEnvironmentVariables = 4;
    public const uint IOFailure = 5;
    public const uint DecodingFailure = 6;
    public const uint InvalidNetworkConfig = 7;
    public const uint TryAgainLater = 11;
    /// <summary>STATUS: the plugin cannot service ADD requests.</summary>
    public const uint PluginNotAvailable = 50;
    /// <summary>STATUS: not available, and existing containers may have limited connectivity.</summary>
    public const uint LimitedConnectivity = 51;
    /// <summary>Plugin-specific (100+): what libcni's skel reports for an untyped failure.</summary>
    public const uint Internal = 999;
}
