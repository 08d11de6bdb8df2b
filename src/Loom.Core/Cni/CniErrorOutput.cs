using System.Text;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>
/// Turns failures into the spec's error result. The plugin's Main calls <see cref="Report"/>
/// from its catch-all: it prints the error JSON on stdout and returns the exit code (1).
/// </summary>
public static class CniErrorOutput
{
    /// <summary>Exit code for any failure; the spec only requires non-zero.</summary>
    public const int ExitCode = 1;

    /// <summary>
    /// Any exception becomes a CNI error: a <see cref="CniException"/> keeps its code, anything else
    /// is code 999 (as libcni's skel does for untyped errors).
    /// </summary>
    public static CniException ToCniException(Exception exception) => exception switch
    {
        CniException cni => cni,
        _ => new CniException(CniErrorCodes.Internal, exception.Message, null, exception),
    };

    /// <summary><c>{"cniVersion","code","msg","details"}</c>; details is omitted when empty, as in Go.</summary>
    public static string ToJson(CniException error, string? cniVersion)
    {
        ArgumentNullException.ThrowIfNull(error);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, CniJson.WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", string.IsNullOrEmpty(cniVersion) ? CniVersions.Latest : cniVersion);
            w.WriteNumber("code", error.Code);
            w.WriteString("msg", error.Msg);
            if (!string.IsNullOrEmpty(error.Details))
            {
                w.WriteString("details", error.Details);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>
    /// Writes the error JSON to <paramref name="stdout"/> and returns <see cref="ExitCode"/>.
    /// <paramref name="cniVersion"/> should be the config's version; when the config could not be
    /// parsed, pass <see cref="CniVersions.TryPeekConfigVersion"/> of stdin (null falls back to the latest).
    /// </summary>
    public static int Report(Exception exception, string? cniVersion, TextWriter stdout)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        stdout.WriteLine(ToJson(ToCniException(exception), cniVersion));
        stdout.Flush();
        return ExitCode;
    }
}
