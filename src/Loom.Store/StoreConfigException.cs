namespace Loom.Store;

/// <summary>The store section cannot work: a missing endpoint or CA, an unknown type, an unreadable TLS file.</summary>
public sealed class StoreConfigException : Exception
{
    public StoreConfigException()
    {
    }

    public StoreConfigException(string message)
        : base(message)
    {
    }

    public StoreConfigException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
