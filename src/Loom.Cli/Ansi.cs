namespace Loom.Cli;

/// <summary>Colour for terminals, plain text for pipes, files and NO_COLOR.</summary>
internal readonly struct Ansi(bool enabled)
{
    public static bool Enabled =>
        !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    public string Bold(string s) => Wrap("1", s);

    public string Green(string s) => Wrap("32", s);

    public string Red(string s) => Wrap("31", s);

    public string Cyan(string s) => Wrap("36", s);

    public string Dim(string s) => Wrap("2", s);

    private string Wrap(string code, string s) => enabled ? $"\e[{code}m{s}\e[0m" : s;
}
