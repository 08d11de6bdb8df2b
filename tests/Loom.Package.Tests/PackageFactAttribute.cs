namespace Loom.Package.Tests;

/// <summary>
/// Skipped, with the reason, where the package cannot be built or installed into a throwaway root: dpkg's tools missing
/// or not root (dpkg --root unpacks as root-owned files; --force-not-root would test another thing).
/// </summary>
internal sealed class PackageFactAttribute : FactAttribute
{
    private static readonly string[] Tools = ["dpkg", "dpkg-deb", "dpkg-shlibdeps", "dpkg-query"];

    public PackageFactAttribute()
    {
        var missing = Tools.Where(t => DebRoot.Which(t) is null).ToList();
        if (missing.Count > 0)
        {
            Skip = $"{string.Join(", ", missing)} missing (apt-get install dpkg-dev): the package cannot be built";
        }
        else if (Environment.UserName != "root")
        {
            Skip = "not root: dpkg --root installs root-owned files";
        }
    }
}
