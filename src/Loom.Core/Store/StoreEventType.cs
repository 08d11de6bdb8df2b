namespace Loom.Core.Store;

public enum StoreEventType
{
    Put,
    Delete,
}
