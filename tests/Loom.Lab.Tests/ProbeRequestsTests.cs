using System.Net;
using Loom.Lab.Migration;

namespace Loom.Lab.Tests;

/// <summary>The probe's DNS wire format and result lines (pure logic; the lab tests send them for real).</summary>
public sealed class ProbeRequestsTests
{
    private static readonly IPEndPoint Server = IPEndPoint.Parse("10.96.0.10:53");

    [Fact]
    public void A_query_asks_one_a_record_with_recursion_desired()
    {
        var q = ProbeRequests.Query(0x1234, "webpod.default.svc.cluster.local");
        Assert.Equal([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0], q[..12]);
        Assert.Equal("\u0006webpod\u0007default\u0003svc\u0007cluster\u0005local\0", System.Text.Encoding.ASCII.GetString(q, 12, q.Length - 16));
        Assert.Equal([0, 1, 0, 1], q[^4..]);
    }

    [Fact]
    public void An_answer_with_a_compressed_name_gives_its_a_records()
    {
        var name = "webpod.default.svc.cluster.local";
        var q = ProbeRequests.Query(7, name);
        byte[] answer = [.. q];
        answer[2] = 0x81; // response
        answer[7] = 2; // two answers
        byte[] rr(byte a, byte b, byte c, byte d) => [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, a, b, c, d];
        answer = [.. answer, .. rr(10, 96, 0, 2), .. rr(10, 96, 0, 3)];
        Assert.Equal([IPAddress.Parse("10.96.0.2"), IPAddress.Parse("10.96.0.3")], ProbeRequests.Answers(answer, name, Server));
    }

    [Fact]
    public void Nxdomain_and_an_empty_answer_are_failures_naming_why()
    {
        var name = "nope.default.svc.cluster.local";
        var q = ProbeRequests.Query(7, name);
        q[3] = 0x83;
        Assert.Contains("NXDOMAIN", Assert.Throws<ProbeException>(() => ProbeRequests.Answers(q, name, Server)).Message, StringComparison.Ordinal);
        q[3] = 0x80;
        Assert.Contains("no A record", Assert.Throws<ProbeException>(() => ProbeRequests.Answers(q, name, Server)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_answer_cut_short_inside_a_record_is_an_index_error_the_lookup_turns_into_a_failure()
    {
        var name = "webpod.default.svc.cluster.local";
        byte[] answer = [.. ProbeRequests.Query(7, name), 0xc0, 12, 0, 1];
        answer[7] = 1;
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => ProbeRequests.Answers(answer, name, Server));
    }

    [Fact]
    public void A_name_with_an_empty_label_is_refused()
    {
        Assert.Throws<ArgumentException>(() => ProbeRequests.Query(1, "a..b"));
    }

    [Fact]
    public void A_result_line_reads_back_and_a_line_cut_short_is_skipped()
    {
        var r = new ProbeResult(DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123), "http", false, "http 10.96.0.2:80: connect: timed out\n(local port 4)") { Millis = 2001 };
        Assert.Equal(r with { Detail = "http 10.96.0.2:80: connect: timed out (local port 4)" }, ProbeResult.Parse(r.ToLine()));
        Assert.Null(ProbeResult.Parse("1700000000123\thttp"));
        Assert.Null(ProbeResult.Parse("1700000000123\thttp\tok\t12")); // cut short before the detail
        Assert.Null(ProbeResult.Parse("x\thttp\tok\t1\t"));
    }
}
