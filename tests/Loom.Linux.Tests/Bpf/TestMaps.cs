using System.Runtime.InteropServices;

namespace Loom.Linux.Tests.Bpf;

// Mirrors of the structs in bpf/test_maps.c.

[StructLayout(LayoutKind.Sequential)]
internal record struct TestKey(uint Addr, ushort Port, byte Proto, byte Pad = 0);

[StructLayout(LayoutKind.Sequential)]
internal record struct TestValue(ulong Packets, ulong Bytes, uint Flags, uint Pad = 0);

[StructLayout(LayoutKind.Sequential)]
internal record struct PktCount(ulong Packets, ulong Bytes);

[StructLayout(LayoutKind.Sequential)]
internal record struct LpmV4Key(uint PrefixLen, uint Addr);
