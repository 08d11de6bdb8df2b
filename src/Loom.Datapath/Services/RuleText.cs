using System.Text;

namespace Loom.Datapath.Services;

/// <summary>
/// Text from the store written into an iptables-restore or nft script. Whatever a Service holds, what comes out is one
/// token on one line that the tool reads back as exactly that text: printable ASCII only (anything else becomes '?'),
/// cut to the kernel's length limit, quoted and escaped as the tool's own parser expects.
/// </summary>
internal static class RuleText
{
    /// <summary>xt_comment keeps 256 bytes including the NUL; iptables refuses longer comments.</summary>
    public const int IptablesCommentMax = 255;

    /// <summary>NFTNL_UDATA_COMMENT_MAXLEN: nft refuses longer comments.</summary>
    public const int NftCommentMax = 128;

    /// <summary>
    /// An iptables <c>--comment</c> argument. Single words of a safe alphabet are written bare as kube-proxy writes them;
    /// anything else is double-quoted with <c>"</c> and <c>\</c> escaped, which iptables-restore's line splitter
    /// (xshared.c add_param_to_argv) turns back into the characters.
    /// </summary>
    public static string IptablesComment(string comment)
    {
        var text = Printable(comment, IptablesCommentMax);
        if (text.Length > 0 && text.All(IsBare))
        {
            return text;
        }

        var sb = new StringBuilder(text.Length + 2).Append('"');
        foreach (var c in text)
        {
            if (c is '"' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.Append('"').ToString();
    }

    /// <summary>An nft <c>comment "..."</c> string. nft's scanner has no escape inside quotes, so <c>"</c> cannot appear and becomes <c>'</c>.</summary>
    public static string NftComment(string comment) => "\"" + Printable(comment, NftCommentMax).Replace('"', '\'') + "\"";

    /// <summary>
    /// The readable part of an nft chain or set name: the characters nft takes in an unquoted identifier
    /// (letters, digits, '/', '-', '_', '.'); anything else becomes '_'. Callers hash the original text, so names of
    /// different services stay distinct even when their readable parts sanitise alike.
    /// </summary>
    public static string NftName(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '/' or '-' or '_' or '.' ? c : '_');
        }

        return sb.ToString();
    }

    /// <summary>Printable ASCII, at most <paramref name="max"/> characters (so bytes): no newline, tab or control character survives.</summary>
    public static string Printable(string text, int max)
    {
        var n = Math.Min(text.Length, max);
        var sb = new StringBuilder(n);
        for (var i = 0; i < n; i++)
        {
            var c = text[i];
            sb.Append(c is >= ' ' and <= '~' ? c : '?');
        }

        return sb.ToString();
    }

    private static bool IsBare(char c) => char.IsAsciiLetterOrDigit(c) || c is '/' or ':' or '.' or '-' or '_';
}
