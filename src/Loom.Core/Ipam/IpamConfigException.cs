namespace Loom.Core.Ipam;

/// <summary>An invalid IPAM configuration; <see cref="Key"/> is the JSON path of the offending value.</summary>
public sealed class IpamConfigException : IpamException
{
    public IpamConfigException()
        : this("ipam", "invalid IPAM configuration")
    {
    }

    public IpamConfigException(string message)
        : this("ipam", message)
    {
    }

    public IpamConfigException(string message, Exception innerException)
        : base(IpamErrorKind.InvalidConfig, message, innerException)
    {
        Key = "ipam";
    }

    public IpamConfigException(string key, string message)
        : base(IpamErrorKind.InvalidConfig, message)
    {
        Key = key;
    }

    /// <summary>JSON path inside the "ipam" object, e.g. <c>ranges[0][1].rangeStart</c>.</summary>
    public string Key { get; }
}
