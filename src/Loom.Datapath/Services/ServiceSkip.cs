namespace Loom.Datapath.Services;

/// <summary>
/// A Service or port the model left out (or changed): which Service (<c>ns/name</c>), a short code fit for a metric
/// label (<c>invalid</c>, <c>unrenderable</c>, <c>duplicate-name</c>, <c>duplicate-frontend</c>, <c>duplicate-nodeport</c>, <c>affinity-clamped</c>)
/// and one line of printable ASCII saying why, fit for a log or a script comment as it is.
/// </summary>
public sealed record ServiceSkip(string Service, string Code, string Text)
{
    public override string ToString() => Text;
}
