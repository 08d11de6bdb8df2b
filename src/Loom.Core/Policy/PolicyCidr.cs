using System.Net;

namespace Loom.Core.Policy;

/// <summary>
/// An ipBlock region of an endpoint's compiled policy: a peer address whose longest matching <see cref="Prefix"/> (in
/// this endpoint and direction) is this one counts as the synthetic <see cref="Identity"/> (at least
/// <see cref="ReservedIdentity.CidrBase"/>, local to the endpoint), whose <see cref="PolicyRule"/>s say what it may use.
/// Except-clauses are the longer prefixes whose region allows less.
/// </summary>
public readonly record struct PolicyCidr(PolicyDirection Direction, IPNetwork Prefix, uint Identity);
