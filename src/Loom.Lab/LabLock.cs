using Loom.Core.Ipam;

namespace Loom.Lab;

/// <summary>
/// The lab directory's lock: `loom lab pod add` run from several shells at once serialize their read-modify-write
/// of state.json. Disposing the returned lock releases it.
/// </summary>
internal static class LabLock
{
    public static FileLock Take(string labDir)
    {
        var path = Path.Combine(labDir, "state.lock");
        FileLock? held = null;
        try
        {
            held = FileLock.Open(path);
            held.Acquire();
            return held;
        }
        catch (IOException e)
        {
            held?.Dispose();
            throw new LabException(e.Message);
        }
    }
}
