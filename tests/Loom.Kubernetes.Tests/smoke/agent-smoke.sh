#!/usr/bin/env bash
# Agent-level smoke of "source": "kubernetes" (as root after `make build`; make test runs it: AgentSmokeTests):
# out/bin/loom agent for node n1 in a network namespace of its own, against replay_server.py serving the test
# fixtures (../Fixtures) on that namespace's loopback. Checks the API's Services in iptables, the route and FDB entry
# to the peer n2 from its Node annotations and LoomNode, /readyz, and the writes the agent sends back (annotations,
# NetworkUnavailable, LoomNode). Everything lives in the namespace, a temp dir and a bpffs dir named after this run.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
NS=loom-k8s-smoke-$$
PIN=/sys/fs/bpf/$NS
D=$(mktemp -d /tmp/loom-k8s-smoke.XXXXXX)
fail=0
cleanup() {
  [ -n "${AGENT:-}" ] && kill "$AGENT" 2>/dev/null && sleep 1 && kill -9 "$AGENT" 2>/dev/null
  [ -n "${SRV:-}" ] && kill "$SRV" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
  rm -rf "$PIN" "$D"
}
trap cleanup EXIT
# nsenter, not ip netns exec (that would remount /sys and hide bpffs); the background ones are started with nsenter
# itself, not this function, so $! is the process (nsenter execs it), not a subshell the trap's kill would miss.
in_ns() { nsenter --net=/run/netns/"$NS" "$@"; }
check() { if eval "$2"; then echo "ok:   $1"; else echo "FAIL: $1"; fail=1; fi; }

ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add eth1 type veth peer name eth1p
ip -n "$NS" addr add 192.168.50.11/24 dev eth1
ip -n "$NS" link set eth1 up
ip -n "$NS" link set eth1p up
nsenter --net=/run/netns/"$NS" python3 "$HERE/replay_server.py" 18431 "$HERE/../Fixtures" 2>"$D/server.log" &
SRV=$!
cat > "$D/kubeconfig" <<K
apiVersion: v1
kind: Config
clusters: [{name: replay, cluster: {server: "http://127.0.0.1:18431"}}]
contexts: [{name: replay, context: {cluster: replay, user: agent}}]
current-context: replay
users: [{name: agent, user: {token: replay}}]
K
cat > "$D/agent.json" <<J
{"source": "kubernetes", "node": "n1", "iface": "eth1", "kubernetes": {"kubeconfig": "$D/kubeconfig"},
 "clusterFile": "$ROOT/examples/cluster/flannel.yaml", "stateDir": "$D/run", "cniConfDir": "$D/net.d",
 "ipamDataDir": "$D/ipam", "bpfPinDir": "$PIN", "metricsAddress": "127.0.0.1:9962"}
J
sleep 1
LOOM_BPF_DIR="$ROOT/out/bpf" nsenter --net=/run/netns/"$NS" "$ROOT/out/bin/loom" agent --config "$D/agent.json" >"$D/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 1 60); do
  [ "$(in_ns curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:9962/readyz)" = 200 ] && break
  sleep 1
done
sleep 6 # the publisher's writes after ready
in_ns iptables-save >"$D/iptables" # to a file: grep -q would cut the pipe short under pipefail
check "/readyz answers 200" '[ "$(in_ns curl -s -m 2 -o /dev/null -w "%{http_code}" http://127.0.0.1:9962/readyz)" = 200 ]'
check "the API's ClusterIP 10.96.0.10:80 is in iptables" 'grep -q -- "-d 10.96.0.10/32 -p tcp .* --dport 80 " "$D/iptables"'
check "the API's NodePort 30080 is in iptables" 'grep -q -- "--dport 30080" "$D/iptables"'
check "a route to n2's spec.podCIDR" 'ip -n "$NS" route | grep "^10.244.2.0/24 via 10.244.2.0 dev loom.1" >/dev/null'
check "an FDB entry for n2's VTEP (its loom.io/vtep-mac) at its loom.io/public-ip" 'bridge -n "$NS" fdb show | grep "02:42:c0:a8:3c:0c dev loom.1 dst 192.168.60.12" >/dev/null'
check "the annotations were patched" 'grep -q "^PATCH /api/v1/nodes/n1 application/merge-patch+json .*loom.io/public-ip" "$D/server.log"'
check "NetworkUnavailable=False was patched" 'grep -q "^PATCH /api/v1/nodes/n1/status application/strategic-merge-patch+json .*LoomIsUp" "$D/server.log"'
check "the LoomNode was created and its status patched" 'grep -q "^POST /apis/loom.io/v1alpha1/loomnodes " "$D/server.log" && grep -q "^PATCH /apis/loom.io/v1alpha1/loomnodes/n1/status .*\"ready\":true" "$D/server.log"'
check "loom status names the source" '"$ROOT/out/bin/loom" status --socket "$D/run/agent.sock" | grep "kubernetes (http://127.0.0.1:18431), synced: nodes ✓" >/dev/null'
[ "$fail" = 0 ] || { echo "--- agent log"; cat "$D/agent.log"; }
exit "$fail"
