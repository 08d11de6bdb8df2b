using System.Net;

namespace Loom.Core.Ipam;

/// <summary>
/// The allocator over <see cref="DiskStore"/>. Each public operation runs entirely under the
/// store's lock, so a multi-range-set ADD is atomic with respect to other plugin processes.
/// </summary>
internal sealed class DiskIpAllocator(IpamConfig config, DiskStore store) : IIpAllocator
{
    public IpamConfig Config { get; } = config;

    public IReadOnlyList<IpAllocation> Allocate(Attachment attachment, IReadOnlyCollection<IPAddress>? requested = null)
    {
        attachment = Normalize(attachment);
        var wanted = AssignRequested(requested ?? []);
        return Locked(() =>
        {
            var all = store.ReadAll();
            var taken = all.Select(r => r.Address).ToHashSet();
            var mine = all.Where(r => Owns(r, attachment)).ToList();
            var results = new List<IpAllocation>();
            var created = new List<IPAddress>();
            try
            {
                for (var index = 0; index < Config.RangeSets.Count; index++)
                {
                    results.Add(AllocateFromSet(index, attachment, wanted[index], all, taken, mine, created));
                }
            }
            catch
            {
                // All or nothing: undo only what this call created, never addresses held before.
                foreach (var address in created)
                {
                    try
                    {
                        store.Remove(address);
                    }
                    catch (IOException)
                    {
                        // Keep the original error; GC reclaims a file we could not remove.
                    }
                }

                throw;
            }

            return (IReadOnlyList<IpAllocation>)results;
        });
    }

    public IReadOnlyList<AllocationRecord> Release(Attachment attachment)
    {
        attachment = Normalize(attachment);
        return Locked(() =>
        {
            var held = FindHeld(store.ReadAll(), attachment);
            foreach (var record in held)
            {
                store.Remove(record.Address);
            }

            return held;
        });
    }

    public IReadOnlyList<AllocationRecord> HoldForRelease(Attachment attachment)
    {
        attachment = Normalize(attachment);
        return Locked(() =>
        {
            var held = FindHeld(store.ReadAll(), attachment);
            foreach (var record in held)
            {
                store.MarkPendingRelease(record);
            }

            return held;
        });
    }

    public IReadOnlyList<AllocationRecord> Find(Attachment attachment)
    {
        attachment = Normalize(attachment);
        return Locked(() => FindHeld(store.ReadAll(), attachment));
    }

    public IReadOnlyList<AllocationRecord> ListAllocations() => Locked(() => (IReadOnlyList<AllocationRecord>)store.ReadAll());

    public IReadOnlyList<AllocationRecord> GarbageCollect(IEnumerable<Attachment> validAttachments)
    {
        var valid = validAttachments.Select(Normalize).ToHashSet();
        var validIds = valid.Select(a => a.ContainerId).ToHashSet(StringComparer.Ordinal);
        return Locked(() =>
        {
            var released = new List<AllocationRecord>();
            var pending = store.ReadPendingReleases();
            foreach (var record in store.ReadAll().Where(r => !pending.Contains(r.Address)))
            {
                // Corrupt files (no owner) match nothing and are reclaimed. Addresses pending release are not: the agent
                // frees them once the old pod's Endpoint is gone (the runtime's GC cannot know about that).
                var legacyKept = record.IfName.Length == 0 && record.ContainerId.Length > 0 && validIds.Contains(record.ContainerId);
                if (!valid.Contains(record.Attachment) && !legacyKept)
                {
                    store.Remove(record.Address);
                    released.Add(record);
                }
            }

            return (IReadOnlyList<AllocationRecord>)released;
        });
    }

    public bool HasFreeAddress() => Locked(() =>
    {
        var used = store.ReadAll().Select(r => r.Address).ToHashSet();
        return Config.RangeSets.All(set =>
        {
            UInt128 inUse = 0;
            foreach (var address in used)
            {
                var range = set.RangeFor(address);
                if (range is not null && !range.IsReserved(address))
                {
                    inUse++;
                }
            }

            return set.Capacity > inUse;
        });
    });

    public void Dispose() => store.Dispose();

    private IpAllocation AllocateFromSet(int index, Attachment attachment, IPAddress? wanted, List<AllocationRecord> all, HashSet<IPAddress> taken, List<AllocationRecord> mine, List<IPAddress> created)
    {
        var set = Config.RangeSets[index];

        // Idempotent ADD: host-local refuses a second ADD for the same attachment; returning
        // what it already holds makes runtime retries after a timeout or crash harmless.
        var existing = mine.FirstOrDefault(r => set.Contains(r.Address));
        if (existing is not null)
        {
            if (wanted is not null && !wanted.Equals(existing.Address))
            {
                throw new IpamException(IpamErrorKind.RequestedIpUnavailable,
                    $"requested IP {IpMath.Format(wanted)}: {Describe(attachment)} already holds {IpMath.Format(existing.Address)} in range set {index} ({set}); release it first");
            }

            store.ClearPendingRelease(existing.Address); // the attachment is back: its address is in use again
            return ToAllocation(index, set, existing.Address);
        }

        if (wanted is not null)
        {
            var range = set.RangeFor(wanted)!;
            if (range.IsReserved(wanted))
            {
                var what = wanted.Equals(range.Gateway) ? "the gateway" : "the network or broadcast address";
                throw new IpamException(IpamErrorKind.RequestedIpUnavailable, $"requested IP {IpMath.Format(wanted)} is {what} of subnet {range.Subnet}");
            }

            if (!store.TryReserve(wanted, attachment))
            {
                var owner = all.FirstOrDefault(r => r.Address.Equals(wanted));
                var by = owner is null ? "another container" : Describe(owner.Attachment);
                throw new IpamException(IpamErrorKind.RequestedIpUnavailable, $"requested IP {IpMath.Format(wanted)} is already allocated to {by}");
            }

            return Reserved(index, set, wanted, created);
        }

        foreach (var (range, value) in AllocationOrder.Candidates(set, store.ReadLastReserved(index)))
        {
            var candidate = range.ToAddress(value);
            if (!taken.Contains(candidate) && store.TryReserve(candidate, attachment))
            {
                return Reserved(index, set, candidate, created);
            }
        }

        throw new IpamException(IpamErrorKind.Exhausted, $"no free IP address left in range set {index} ({set}) of network {Config.NetworkName}");
    }

    private IpAllocation Reserved(int index, RangeSet set, IPAddress address, List<IPAddress> created)
    {
        created.Add(address);
        store.WriteLastReserved(index, address);
        return ToAllocation(index, set, address);
    }

    private static IpAllocation ToAllocation(int index, RangeSet set, IPAddress address)
    {
        var range = set.RangeFor(address)!;
        return new IpAllocation(index, address, range.Subnet, range.Gateway);
    }

    /// <summary>Maps each requested address to its range set, failing for strays and doubles.</summary>
    private IPAddress?[] AssignRequested(IReadOnlyCollection<IPAddress> requested)
    {
        var wanted = new IPAddress?[Config.RangeSets.Count];
        foreach (var raw in requested)
        {
            var address = raw.IsIPv4MappedToIPv6 ? raw.MapToIPv4() : raw;
            var index = -1;
            for (var i = 0; i < Config.RangeSets.Count && index < 0; i++)
            {
                if (Config.RangeSets[i].Contains(address))
                {
                    index = i;
                }
            }

            if (index < 0)
            {
                throw new IpamException(IpamErrorKind.RequestedIpUnavailable,
                    $"requested IP {IpMath.Format(address)} is not in any range set ({string.Join("; ", Config.RangeSets)})");
            }

            if (wanted[index] is { } other)
            {
                throw new IpamException(IpamErrorKind.RequestedIpUnavailable,
                    $"requested IPs {IpMath.Format(other)} and {IpMath.Format(address)} are both in range set {index}; only one address per range set is allocated");
            }

            wanted[index] = address;
        }

        return wanted;
    }

    /// <summary>host-local's matching: exact (id, ifname), else files from before ifname was recorded.</summary>
    private static List<AllocationRecord> FindHeld(List<AllocationRecord> all, Attachment attachment)
    {
        var exact = all.Where(r => r.Attachment == attachment).ToList();
        return exact.Count > 0 ? exact : all.Where(r => IsLegacyOf(r, attachment)).ToList();
    }

    private static bool Owns(AllocationRecord record, Attachment attachment)
        => record.Attachment == attachment || IsLegacyOf(record, attachment);

    private static bool IsLegacyOf(AllocationRecord record, Attachment attachment)
        => record.IfName.Length == 0 && record.ContainerId.Length > 0 && record.ContainerId == attachment.ContainerId;

    private static Attachment Normalize(Attachment attachment) => new(attachment.ContainerId.Trim(), attachment.IfName.Trim());

    private static string Describe(Attachment a) => a.ContainerId.Length == 0 ? "an unknown owner" : $"container {a.ContainerId} ({a.IfName})";

    private T Locked<T>(Func<T> operation)
    {
        try
        {
            using (store.Lock())
            {
                return operation();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IpamException(IpamErrorKind.Io, $"IPAM store {store.Directory}: {e.Message}", e);
        }
    }
}
