using System.Net;
using System.Text;
using Loom.Core.Io;

namespace Loom.Core.Ipam;

/// <summary>
/// host-local's on-disk layout, so either plugin can take over the other's state:
/// <c>dataDir/network/&lt;ip&gt;</c> holds <c>containerID\r\nifname</c>,
/// <c>last_reserved_ip.&lt;set index&gt;</c> holds the round-robin cursor, <c>pending_release.&lt;ip&gt;</c> (Loom's own)
/// marks an address whose pod is gone but whose Endpoint may still exist, and
/// <c>lock</c> is flock'ed around every read-modify-write.
/// </summary>
/// <remarks>
/// Callers hold <see cref="Lock"/> around every other member. Claims and the cursor are written atomically but not
/// fsynced, as host-local writes them: after a power cut no pod of the node is alive, and a file cut short reads as
/// corrupt (kept taken until collected). A pending-release mark, rare and guarding an Endpoint that outlives the node's
/// pods in the store, stays durable.
/// </remarks>
internal sealed class DiskStore : IDisposable
{
    private const string LastReservedPrefix = "last_reserved_ip.";
    private const string LineBreak = "\r\n";

    // Not an address, so host-local and ReadAll skip it: "pending_release.10.244.1.5".
    private const string PendingPrefix = "pending_release.";

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
    /// Claims the address for the attachment. The claim is atomic and exclusive (<see cref="AtomicFile.TryCreate"/>):
    /// if the file already exists the address is simply taken, and no reader ever sees it empty or half-written.
    /// </summary>
    public bool TryReserve(IPAddress address, Attachment owner)
    {
        if (!AtomicFile.TryCreate(PathFor(address), Encoding.UTF8.GetBytes(owner.ContainerId.Trim() + LineBreak + owner.IfName), sync: false))
        {
            return false;
        }

        // The address was free, so any mark left for it (a DEL killed mid-Remove) belongs to an old owner.
        ClearPendingRelease(address);
        return true;
    }

    /// <summary>Rewrites an address file's owner (a corrupt file rebuilt from what the node knows).</summary>
    public void Rewrite(IPAddress address, Attachment owner)
        => AtomicFile.Write(PathFor(address), Encoding.UTF8.GetBytes(owner.ContainerId.Trim() + LineBreak + owner.IfName), UnixFileMode.UserRead | UnixFileMode.UserWrite);

    /// <summary>
    /// Marks an address as released by its pod but still named by an Endpoint the agent was not told about: the
    /// address file stays (so no ADD hands the address out) until the agent confirms the Endpoint is gone.
    /// </summary>
    public void MarkPendingRelease(AllocationRecord record)
        => AtomicFile.Write(Path.Combine(Directory, PendingPrefix + IpMath.Format(record.Address)),
            Encoding.UTF8.GetBytes(record.ContainerId + LineBreak + record.IfName), UnixFileMode.UserRead | UnixFileMode.UserWrite);

    /// <summary>
    /// The addresses marked by <see cref="MarkPendingRelease"/> whose mark names the address file's owner: a mark
    /// left by a DEL killed mid-Remove never holds the address once it went to another pod.
    /// </summary>
    public HashSet<IPAddress> ReadPendingReleases()
    {
        var pending = new HashSet<IPAddress>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, PendingPrefix + "*"))
        {
            if (IpMath.TryParse(Path.GetFileName(path)[PendingPrefix.Length..], out var address)
                && TryRead(path) is { } mark && TryRead(PathFor(address)) is { } file
                && Parse(address, mark) is { IsCorrupt: false } marked && marked.Attachment == Parse(address, file).Attachment)
            {
                pending.Add(address);
            }
        }

        return pending;
    }

    /// <summary>Frees the address: its pending-release mark, then its file (a crash in between leaves the address taken, unmarked).</summary>
    public bool Remove(IPAddress address)
    {
        var path = PathFor(address);
        var existed = File.Exists(path);
        File.Delete(Path.Combine(Directory, PendingPrefix + IpMath.Format(address)));
        File.Delete(path);
        return existed;
    }

    private static string? TryRead(string path)
    {
        try
        {
            return ReadSmallText(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// A file of a few bytes, read whole. Not File.ReadAllText: its StreamReader allocates ~12 KB of buffers per
    /// file, and ReadAll reads one file per allocated address on every ADD and DEL (fresh heap pages for each).
    /// </summary>
    private static string ReadSmallText(string path)
    {
        ReadOnlySpan<byte> bytes = File.ReadAllBytes(path);
        return Encoding.UTF8.GetString(bytes.StartsWith(Encoding.UTF8.Preamble) ? bytes[Encoding.UTF8.Preamble.Length..] : bytes);
    }

    public IPAddress? ReadLastReserved(int rangeSetIndex)
    {
        var path = Path.Combine(Directory, LastReservedPrefix + rangeSetIndex);
        try
        {
            return IpMath.TryParse(ReadSmallText(path).Trim(), out var address) ? address : null;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Written atomically so a crash never leaves a torn cursor.</summary>
    public void WriteLastReserved(int rangeSetIndex, IPAddress address)
        => AtomicFile.WriteText(Path.Combine(Directory, LastReservedPrefix + rangeSetIndex), IpMath.Format(address), sync: false);

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
                content = ReadSmallText(path);
            }
            catch (FileNotFoundException)
            {
                continue; // removed by a writer that does not take the lock
            }

            records.Add(Parse(address, content));
        }

        return records;
    }

    /// <summary>
    /// host-local's content, <c>containerID\r\nifname</c> (old files: the ID alone). A file cut short or filled with
    /// garbage (a power cut before its data reached the disk) names no owner: an empty record, which keeps the address
    /// taken and matches no attachment until it is rebuilt or collected (<see cref="AllocationRecord.IsCorrupt"/>).
    /// </summary>
    internal static AllocationRecord Parse(IPAddress address, string content)
    {
        var lineBreak = content.IndexOf(LineBreak, StringComparison.Ordinal);
        var id = (lineBreak < 0 ? content : content[..lineBreak]).Trim();
        var ifName = lineBreak < 0 ? "" : content[(lineBreak + LineBreak.Length)..].Trim();
        return IsName(id) && (ifName.Length == 0 || IsName(ifName)) ? new AllocationRecord(address, id, ifName) : new AllocationRecord(address, "", "");
    }

    public void ClearPendingRelease(IPAddress address) => File.Delete(Path.Combine(Directory, PendingPrefix + IpMath.Format(address)));

    public void Dispose() => _fileLock.Dispose();

    // The spec's container ID (alphanumerics, '-', '_', '.') and a Linux interface name (printable, no '/' or space).
    private static bool IsName(string s) => s.Length > 0 && s.All(c => c > ' ' && c < 0x7f && c != '/');

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
