namespace Loom.Core.Cni;

/// <summary>Maps <see cref="CniCommand"/> to and from the exact <c>CNI_COMMAND</c> spelling.</summary>
public static class CniCommandNames
{
    public static string ToWire(this CniCommand command) => command switch
    {
        CniCommand.Add => "ADD",
        CniCommand.Del => "DEL",
        CniCommand.Check => "CHECK",
        CniCommand.Status => "STATUS",
        CniCommand.Gc => "GC",
        CniCommand.Version => "VERSION",
        _ => throw new ArgumentOutOfRangeException(nameof(command)),
    };

    /// <summary>Case-sensitive, as libcni's skel compares it.</summary>
    public static bool TryParse(string? value, out CniCommand command)
    {
        switch (value)
        {
            case "ADD": command = CniCommand.Add; return true;
            case "DEL": command = CniCommand.Del; return true;
            case "CHECK": command = CniCommand.Check; return true;
            case "STATUS": command = CniCommand.Status; return true;
            case "GC": command = CniCommand.Gc; return true;
            case "VERSION": command = CniCommand.Version; return true;
            default: command = default; return false;
        }
    }
}
