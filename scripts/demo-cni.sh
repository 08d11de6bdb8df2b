#!/usr/bin/env bash
# make demo-cni: one node namespace, two pods in it wired by the real loom-cni executable, exactly as a
# container runtime calls it (CNI_* variables + the network config on stdin). Shows what a person would
# inspect, proves TCP between the pods, then deletes everything. Nothing touches the machine's own namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/out/bin"
run="loomdemo$$"
work=$(mktemp -d /tmp/loom-demo.XXXXXX)
node="$run-node"
. scripts/colour.sh
heading() { printf '\n%s== %s ==%s\n' "$c_head" "$*" "$c_off"; }

# A run killed earlier leaves namespaces named loomdemo<pid>-*: remove those whose process is gone.
for ns in $(ip netns list | awk '{print $1}' | grep '^loomdemo[0-9]*-' || true); do
  pid=${ns#loomdemo}; pid=${pid%%-*}
  kill -0 "$pid" 2>/dev/null || ip netns delete "$ns" 2>/dev/null || true
done

cleanup() {
  set +e
  for pod in a b; do
    [ -e "/var/run/netns/$run-pod-$pod" ] && cni DEL "$pod" >/dev/null 2>&1
    ip netns delete "$run-pod-$pod" 2>/dev/null
  done
  ip netns delete "$node" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/10-loom.conf" <<JSON
{
  "cniVersion": "1.1.0",
  "name": "demo",
  "type": "loom-cni",
  "bridge": "cni0",
  "isGateway": true,
  "isDefaultGateway": true,
  "ipam": {
    "type": "loom",
    "ranges": [[{"subnet": "10.244.0.0/24"}]],
    "routes": [{"dst": "10.244.0.0/16"}],
    "dataDir": "$work/ipam"
  }
}
JSON

# cni COMMAND POD: run loom-cni inside the node's namespace, the way a runtime on that node would.
cni() {
  CNI_COMMAND=$1 CNI_CONTAINERID="demo-$2" CNI_NETNS="/var/run/netns/$run-pod-$2" CNI_IFNAME=eth0 \
    CNI_PATH="$BIN:/usr/lib/cni" nsenter --net="/var/run/netns/$node" "$BIN/loom-cni" < "$work/10-loom.conf"
}

heading "A node namespace and two pod namespaces"
ip netns add "$node"
ip -n "$node" link set lo up
for pod in a b; do ip netns add "$run-pod-$pod"; done
echo "node: $node   pods: $run-pod-a, $run-pod-b"

heading "The network config the runtime hands loom-cni"
cat "$work/10-loom.conf"

for pod in a b; do
  heading "CNI ADD pod $pod (the result loom-cni prints)"
  start=$(date +%s%N)
  cni ADD "$pod" > "$work/result-$pod.json"
  jq "$jq_colour" . "$work/result-$pod.json"
  echo "(took $(( ($(date +%s%N) - start) / 1000000 )) ms)"
done
ip_a=$(jq -r '.ips[0].address' "$work/result-a.json"); ip_a=${ip_a%/*}
ip_b=$(jq -r '.ips[0].address' "$work/result-b.json"); ip_b=${ip_b%/*}

heading "Inside pod a: addresses and routes"
ip -n "$run-pod-a" -br addr
ip -n "$run-pod-a" route

heading "On the node: the cni0 bridge and its ports"
ip -n "$node" -br addr show dev cni0
ip -n "$node" -br link show master cni0

heading "TCP from pod a ($ip_a) to pod b ($ip_b:8080)"
nsenter --net="/var/run/netns/$run-pod-b" busybox nc -l -p 8080 > "$work/received" &
listener=$!
for _ in $(seq 50); do nsenter --net="/var/run/netns/$run-pod-b" ss -ltn | grep -q ':8080' && break; sleep 0.05; done
echo "hello from pod a" | nsenter --net="/var/run/netns/$run-pod-a" busybox nc -w 2 "$ip_b" 8080
wait "$listener" || true
printf 'pod b received: %s%s%s\n' "$c_ok" "$(cat "$work/received")" "$c_off"
[ "$(cat "$work/received")" = "hello from pod a" ]

heading "CNI CHECK, then DEL both pods"
# A runtime hands CHECK the result of ADD as prevResult.
jq --slurpfile r "$work/result-a.json" '. + {prevResult: $r[0]}' "$work/10-loom.conf" > "$work/check-a.conf"
CNI_COMMAND=CHECK CNI_CONTAINERID=demo-a CNI_NETNS="/var/run/netns/$run-pod-a" CNI_IFNAME=eth0 CNI_PATH="$BIN" \
  nsenter --net="/var/run/netns/$node" "$BIN/loom-cni" < "$work/check-a.conf" && echo "CHECK a: ok"
for pod in a b; do cni DEL "$pod" && echo "DEL $pod: ok"; done
echo "allocations left in the IPAM store: $(find "$work/ipam" -type f ! -name lock ! -name 'last_reserved_ip*' | wc -l)"
echo "veths left on the node: $(ip -n "$node" -br link show master cni0 | wc -l)"

heading "Done"
echo "Everything was made inside namespaces named $run-*; they are removed now."
