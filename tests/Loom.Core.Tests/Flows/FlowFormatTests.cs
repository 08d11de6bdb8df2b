using Loom.Core.Flows;
using static Loom.Core.Tests.Flows.FlowTestData;

namespace Loom.Core.Tests.Flows;

public sealed class FlowFormatTests
{
    [Fact]
    public void Compact_prints_pods_identities_point_verdict_and_flags()
    {
        Assert.Equal("Nov 30 12:46:29.123 n1: x/client-7d9f:43210 (ID:12345) -> y/server:80 (ID:23456) to-endpoint FORWARDED (TCP Flags: SYN)",
            FlowFormat.Compact(Syn()));
    }

    [Fact]
    public void A_reply_is_printed_from_the_client_with_a_left_arrow()
    {
        var reply = Syn() with { IsReply = true, Source = Syn().Destination with { }, Destination = Syn().Source, TcpFlags = "SYN, ACK", ObservationPoint = "from-endpoint" };
        Assert.Equal("Nov 30 12:46:29.123 n1: x/client-7d9f:43210 (ID:12345) <- y/server:80 (ID:23456) from-endpoint FORWARDED (TCP Flags: SYN, ACK)",
            FlowFormat.Compact(reply));
    }

    [Fact]
    public void Addresses_reserved_identities_drops_and_icmp()
    {
        var drop = Syn() with
        {
            Type = "drop", Verdict = FlowNames.Dropped, DropReason = "POLICY_DENIED", Protocol = "ICMP", TcpFlags = null,
            Source = Addr("192.168.50.1", 0, 2), Destination = Addr("10.244.2.1", 0, 1),
        };
        Assert.Equal("Nov 30 12:46:29.123 n1: 192.168.50.1 (world) -> 10.244.2.1 (host) to-endpoint DROPPED POLICY_DENIED (ICMP)", FlowFormat.Compact(drop));
        var remote = drop with { Source = Addr("192.168.50.12", 8472, 6), Destination = Addr("10.244.2.1", 8472, 0), DropReason = null, Verdict = "FORWARDED", Protocol = "UDP" };
        Assert.Equal("Nov 30 12:46:29.123 n1: 192.168.50.12:8472 (remote-node) -> 10.244.2.1:8472 (unknown) to-endpoint FORWARDED (UDP)", FlowFormat.Compact(remote));
    }

    [Fact]
    public void Policy_verdicts_and_translations_say_what_happened()
    {
        var verdict = Syn() with { Type = "policy-verdict", TrafficDirection = "ingress", Verdict = FlowNames.Dropped, DropReason = "POLICY_DENIED" };
        Assert.Contains(" policy-verdict:INGRESS DROPPED POLICY_DENIED (TCP Flags: SYN)", FlowFormat.Compact(verdict), StringComparison.Ordinal);
        var nat = Syn() with
        {
            Type = "translation", Verdict = FlowNames.Translated, ObservationPoint = "socket", OriginalDestination = "10.96.0.20:80",
            DestinationService = new FlowService("y", "web"),
        };
        Assert.Contains("-> y/server:80 (ID:23456) socket translated from 10.96.0.20:80 (service y/web) TRANSLATED (TCP Flags: SYN)", FlowFormat.Compact(nat), StringComparison.Ordinal);
        // A socket translation has no client address yet (connect() before bind): printed as "socket".
        var unnamed = nat with { Source = new FlowPeer() };
        Assert.Contains("n1: socket (unknown) -> y/server:80", FlowFormat.Compact(unnamed), StringComparison.Ordinal);
    }

    [Fact]
    public void Table_row_and_json()
    {
        Assert.Equal(FlowFormat.TableHeader.Count, FlowFormat.TableRow(Syn()).Count);
        Assert.Equal(["Nov 30 12:46:29.123", "n1", "x/client-7d9f:43210", "y/server:80", "to-endpoint", "FORWARDED", "FORWARDED (TCP Flags: SYN)"], FlowFormat.TableRow(Syn()));
        var json = FlowFormat.Json(Syn(7));
        Assert.DoesNotContain('\n', json);
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        Assert.Equal(7, doc.RootElement.GetProperty("seq").GetInt64());
        Assert.Equal("y", doc.RootElement.GetProperty("destination").GetProperty("namespace").GetString());
        Assert.Equal(23456u, doc.RootElement.GetProperty("destination").GetProperty("identity").GetUInt32());
        Assert.False(doc.RootElement.TryGetProperty("dropReason", out _));
    }
}
