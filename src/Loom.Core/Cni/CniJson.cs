using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Loom.Core.Cni;

/// <summary>Writer settings for everything the plugin prints: readable JSON, as the Go plugins print it.</summary>
internal static class CniJson
{
    // The default encoder escapes '"' inside strings as \u0022; an operator reading an error should see a quote.
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = JsonOnlyEncoder.Instance };
}

/// <summary>
/// Escapes what JSON requires (quote, backslash, control characters) and nothing else, as Go's plugins print. Not
/// JavaScriptEncoder.UnsafeRelaxedJsonEscaping, which escapes alike but builds a table of every Unicode range when first
/// used: ~4% of the CPU of a loom-cni run, which prints one line. Invalid UTF-8 is left to the base class (U+FFFD).
/// </summary>
internal sealed unsafe class JsonOnlyEncoder : JavaScriptEncoder
{
    public static readonly JsonOnlyEncoder Instance = new();

    public override int MaxOutputCharactersPerInputCharacter => 6; // \uXXXX

    // U+2028/2029 too, as Go's encoder and the relaxed one do: JavaScript reads them as line breaks.
    public override bool WillEncode(int unicodeScalar) => unicodeScalar is < 0x20 or '"' or '\\' or 0x2028 or 0x2029;

    public override int FindFirstCharacterToEncode(char* text, int textLength)
    {
        for (var i = 0; i < textLength; i++)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < textLength && char.IsLowSurrogate(text[i + 1]))
            {
                i++; // a valid pair: printed as is
            }
            else if (WillEncode(c) || char.IsSurrogate(c))
            {
                return i;
            }
        }

        return -1;
    }

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        for (var i = 0; i < utf8Text.Length;)
        {
            var b = utf8Text[i];
            if (b < 0x80)
            {
                if (WillEncode(b))
                {
                    return i;
                }

                i++;
                continue;
            }

            if (Rune.DecodeFromUtf8(utf8Text[i..], out var rune, out var consumed) != System.Buffers.OperationStatus.Done || WillEncode(rune.Value))
            {
                return i;
            }

            i += consumed;
        }

        return -1;
    }

    public override bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        var shortForm = unicodeScalar switch
        {
            '"' => '"',
            '\\' => '\\',
            '\n' => 'n',
            '\r' => 'r',
            '\t' => 't',
            '\b' => 'b',
            '\f' => 'f',
            _ => '\0',
        };
        var output = shortForm != '\0' ? $"\\{shortForm}" : !WillEncode(unicodeScalar) ? char.ConvertFromUtf32(unicodeScalar) : $"\\u{unicodeScalar:X4}";
        if (output.Length > bufferLength)
        {
            numberOfCharactersWritten = 0;
            return false;
        }

        output.AsSpan().CopyTo(new Span<char>(buffer, bufferLength));
        numberOfCharactersWritten = output.Length;
        return true;
    }
}
