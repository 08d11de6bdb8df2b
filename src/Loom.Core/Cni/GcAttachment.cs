namespace Loom.Core.Cni;

/// <summary>A still-valid attachment named in a GC request; everything else may be cleaned up.</summary>
public readonly record struct GcAttachment(string ContainerId, string IfName);
