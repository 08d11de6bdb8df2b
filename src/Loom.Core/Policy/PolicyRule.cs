namespace Loom.Core.Policy;

/// <summary>
/// One allow entry of an endpoint's compiled policy: traffic in <see cref="Direction"/> with the peer
/// <see cref="Identity"/> (0: any peer, world included), <see cref="Protocol"/> (IANA number; 0: every protocol) and a
/// destination port in the prefix (<see cref="Port"/>, <see cref="PortPrefixBits"/>) (0 bits: every port). An endPort
/// range becomes the few prefixes that cover it exactly, as the BPF map is a longest-prefix-match trie.
/// </summary>
public readonly record struct PolicyRule(PolicyDirection Direction, uint Identity, byte Protocol, ushort Port, byte PortPrefixBits);
