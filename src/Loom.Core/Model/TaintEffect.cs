namespace Loom.Core.Model;

public enum TaintEffect
{
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
}
