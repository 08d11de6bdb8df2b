namespace Loom.Core.Model;

public enum SessionAffinity
{
    None,
    ClientIP,
}
