using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

public sealed class KernelNatHoldTests
{
    [Fact]
    public void Only_established_tcp_flows_answered_from_another_address_than_they_were_sent_to_count()
    {
        string[] conntrack =
        [
            // DNATed to a backend: sent to the ClusterIP, answered by the pod.
            "ipv4     2 tcp      6 431999 ESTABLISHED src=10.245.1.2 dst=10.96.0.5 sport=40000 dport=9000 src=10.245.2.5 dst=10.245.1.2 sport=9000 dport=40000 [ASSURED] mark=0 zone=0 use=2",
            // Not NATed.
            "ipv4     2 tcp      6 431999 ESTABLISHED src=10.245.1.2 dst=10.245.2.5 sport=40001 dport=80 src=10.245.2.5 dst=10.245.1.2 sport=80 dport=40001 [ASSURED] mark=0 zone=0 use=2",
            // DNATed but closing.
            "ipv4     2 tcp      6 118 TIME_WAIT src=10.245.1.2 dst=10.96.0.5 sport=40002 dport=80 src=10.245.2.5 dst=10.245.1.2 sport=80 dport=40002 [ASSURED] mark=0 zone=0 use=2",
            // UDP (DNS): its next query is a new flow.
            "ipv4     2 udp      17 28 src=10.245.1.2 dst=10.96.0.10 sport=5353 dport=53 src=10.245.2.4 dst=10.245.1.2 sport=53 dport=5353 mark=0 zone=0 use=2",
            "garbage",
        ];
        Assert.Equal(1, KernelNatHold.DnatedFlows(conntrack));
        Assert.Equal(0, KernelNatHold.DnatedFlows([]));
    }
}
