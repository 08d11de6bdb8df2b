namespace Loom.Core.Controllers;

/// <summary>One controller's line in <c>loom status</c>: healthy or not, what it holds, how many passes, the last error.</summary>
public sealed record ControllerStatus(string Name, bool Healthy, string Summary, long Passes, string? LastError = null);
