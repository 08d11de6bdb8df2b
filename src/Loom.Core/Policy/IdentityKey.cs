namespace Loom.Core.Policy;

/// <summary>
/// The binding of one label set to its identity (store kind "identitykey", keyed by <see cref="SecurityLabels.Hash"/>).
/// It is only ever created with a compare-and-swap create, so two nodes racing cannot give one set two numbers.
/// <see cref="Dying"/> marks it while garbage collection checks for a last reference; an acquirer that finds it so
/// clears the mark (after putting its reference), which makes the collector's delete fail.
/// </summary>
public sealed record IdentityKey
{
    public required string Hash { get; init; }

    public required uint Id { get; init; }

    /// <summary>The set's <see cref="SecurityLabels.Canonical"/> text: a hash collision is detected, not obeyed.</summary>
    public required string Labels { get; init; }

    public bool Dying { get; set; }
}
