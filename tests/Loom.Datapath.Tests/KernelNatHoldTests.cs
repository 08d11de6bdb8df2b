using Loom.Datapath.Services;

namespace Loom.Datapath.Tests;

public sealed class KernelNatHoldTests
{
    [Fact]
    public void Live_flows_answered_from_another_address_than_they_were_sent_to_count_closed_ones_do_not()
    {
        string[] conntrack =
        [
            // DNATed to a backend: sent to the ClusterIP, answered by the pod.
            "ipv4     2 tcp      6 431999 ESTABLISHED src=10.245.1.2 dst=10.96.0.5 sport=40000 dport=9000 src=10.245.2.5 dst=10.245.1.2 sport=9000 dport=40000 [ASSURED] mark=0 zone=0 use=2",
            // Not NATed.
            "ipv4     2 tcp      6 431999 ESTABLISHED src=10.245.1.2 dst=10.245.2.5 sport=40001 dport=80 src=10.245.2.5 dst=10.245.1.2 sport=80 dport=40001 [ASSURED] mark=0 zone=0 use=2",
            // DNATed but closing.
            "ipv4     2 tcp      6 118 TIME_WAIT src=10.245.1.2 dst=10.96.0.5 sport=40002 dport=80 src=10.245.2.5 dst=10.245.1.2 sport=80 dport=40002 [ASSURED] mark=0 zone=0 use=2",
            // A connect whose SYN-ACK is on its way.
            "ipv4     2 tcp      6 118 SYN_SENT src=192.168.10.100 dst=10.96.0.2 sport=40003 dport=80 [UNREPLIED] src=10.245.2.5 dst=192.168.10.100 sport=80 dport=40003 mark=0 zone=0 use=2",
            // A DNS answer on its way.
            "ipv4     2 udp      17 28 src=10.245.1.2 dst=10.96.0.10 sport=5353 dport=53 src=10.245.2.4 dst=10.245.1.2 sport=53 dport=5353 mark=0 zone=0 use=2",
            // Closing, not NATed UDP.
            "ipv4     2 tcp      6 10 CLOSE src=10.245.1.2 dst=10.96.0.5 sport=40004 dport=80 src=10.245.2.5 dst=10.245.1.2 sport=80 dport=40004 mark=0 zone=0 use=2",
            "ipv4     2 udp      17 28 src=10.245.1.2 dst=10.245.2.4 sport=5354 dport=53 src=10.245.2.4 dst=10.245.1.2 sport=53 dport=5354 mark=0 zone=0 use=2",
            "garbage",
        ];
        Assert.Equal(3, KernelNatHold.DnatedFlows(conntrack));
        Assert.Equal(0, KernelNatHold.DnatedFlows([]));
    }
}
