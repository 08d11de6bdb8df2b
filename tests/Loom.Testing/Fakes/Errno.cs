namespace Loom.Testing.Fakes;

/// <summary>The errno values the fakes raise, as the kernel's uapi defines them.</summary>
public static class Errno
{
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int E2BIG = 7;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int ERANGE = 34;
    public const int EOPNOTSUPP = 95;
    public const int EADDRNOTAVAIL = 99;
    public const int ENETDOWN = 100;
    public const int ENETUNREACH = 101;
}
