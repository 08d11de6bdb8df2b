using System.Text.Encodings.Web;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>Writer settings for everything the plugin prints: readable JSON, as the Go plugins print it.</summary>
internal static class CniJson
{
    // The default encoder escapes '"' inside strings as \u0022; an operator reading an error should see a quote.
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
