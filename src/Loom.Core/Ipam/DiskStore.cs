using System.Net;
using System.Text;

namespace Loom.Core.Ipam;

/// <summary>
/// host-local's on-disk layout, so either plugin can take over the other's state:
/// <c>dataDir/network/&lt;ip&gt;</c> holds <c>containerID\r\nifname</c>,
/// <c>last_reserved_ip.&lt;set index&gt;</c> holds the round-robin cursor, and
/// <c>lock</c> is flock'ed around every read-modify-write.
/// </summary>
/// <remarks>Callers hold <see cref="Lock"/> around every other member.</remarks>
internal sealed class DiskStore : IDisposable
{
    private const string LastReservedPrefix = "last_reserved_ip.";
    private const string LineBreak = "\r\n";

    private readonly FileLock _fileLock;

    // flock excludes other open file descriptions, not threads sharing this one.
    private readonly Lock _threadGate = new();

    public DiskStore(string directory)
    {
        Directory = directory;
        if (OperatingSystem.IsWindows())
        {
            System.IO.Directory.CreateDirectory(directory);
        }
        else
        {
            // 0755 like host-local: readable by tools, writable only by the plugin (root).
            System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        }

        _fileLock = FileLock.Open(Path.Combine(directory, "lock"));
    }

    public string Directory { get; }

    public Scope Lock()
    {
        _threadGate.Enter();
        try
        {
            _fileLock.Acquire();
        }
        catch
        {
            _threadGate.Exit();
            throw;
        }

        return new Scope(this);
    }

    /// <summary>
    /// Claims the address for the attachment. O_EXCL makes the claim atomic: if the file
    /// already exists (even from a crashed writer) the address is simply taken.
    /// </summary>
    public bool TryReserve(IPAddress address, Attachment owner)
    {
        var path = PathFor(address);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600, as host-local
        }

        FileStream file;
        try
        {
            file = new FileStream(path, options);
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }

        try
        {
            using (file)
            {
                // No fsync, as host-local: O_EXCL already makes the claim exclusive, and an allocation that a
                // power cut loses belonged to a pod that did not survive the reboot either.
                file.Write(Encoding.UTF8.GetBytes(owner.ContainerId.Trim() + LineBreak + owner.IfName));
            }
        }
        catch
        {
            // Never leave a claim nobody knows about when we can still undo it.
            File.Delete(path);
            throw;
        }

        return true;
    }

    public bool Remove(IPAddress address)
    {
        var path = PathFor(address);
        if (!File.Exists(path))
        {
            return false;
        }

        File.Delete(path);
        return true;
    }

    public IPAddress? ReadLastReserved(int rangeSetIndex)
    {
        var path = Path.Combine(Directory, LastReservedPrefix + rangeSetIndex);
        try
        {
            return IpMath.TryParse(File.ReadAllText(path).Trim(), out var address) ? address : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Written via temp file and rename so a crash never leaves a torn cursor.</summary>
    public void WriteLastReserved(int rangeSetIndex, IPAddress address)
    {
        var name = LastReservedPrefix + rangeSetIndex;
        var temp = Path.Combine(Directory, "." + name + ".tmp");
        File.WriteAllText(temp, IpMath.Format(address));
        File.Move(temp, Path.Combine(Directory, name), overwrite: true);
    }

    /// <summary>Every address file; other files (lock, cursors, temp files) are skipped.</summary>
    public List<AllocationRecord> ReadAll()
    {
        var records = new List<AllocationRecord>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory))
        {
            var name = Path.GetFileName(path);
            if (!IpMath.TryParse(name, out var address))
            {
                continue;
            }

            string content;
            try
            {
                content = File.ReadAllText(path);
            }
            catch (FileNotFoundException)
            {
                continue; // removed by a writer that does not take the lock
            }

            var lineBreak = content.IndexOf(LineBreak, StringComparison.Ordinal);
            records.Add(lineBreak < 0
                ? new AllocationRecord(address, content.Trim(), "")
                : new AllocationRecord(address, content[..lineBreak].Trim(), content[(lineBreak + LineBreak.Length)..].Trim()));
        }

        return records;
    }

    public void Dispose() => _fileLock.Dispose();

    private string PathFor(IPAddress address) => Path.Combine(Directory, IpMath.Format(address));

    /// <summary>Holds both the in-process gate and the flock until disposed.</summary>
    public readonly struct Scope(DiskStore store) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                store._fileLock.Release();
            }
            finally
            {
                store._threadGate.Exit();
            }
        }
    }
}
