namespace Loom.Core.Migration;

/// <summary>How far <c>migrate finalize</c> got: the step last started and whether it completed.</summary>
public sealed record FinalizeState
{
    /// <summary>Null: finalize has not started.</summary>
    public FinalizeStep? Step { get; set; }

    public bool Done { get; set; }

    public string? Error { get; set; }
}
