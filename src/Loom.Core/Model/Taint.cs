namespace Loom.Core.Model;

public sealed record Taint(string Key, string? Value, TaintEffect Effect);
