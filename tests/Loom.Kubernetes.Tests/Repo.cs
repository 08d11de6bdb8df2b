namespace Loom.Kubernetes.Tests;

/// <summary>The checkout the tests run from (the folder holding Loom.slnx).</summary>
internal static class Repo
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Loom.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("no Loom.slnx above " + AppContext.BaseDirectory);
    }
}
