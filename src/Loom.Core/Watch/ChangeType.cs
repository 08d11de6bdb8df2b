namespace Loom.Core.Watch;

public enum ChangeType
{
    Added,
    Updated,
    Deleted,
}
