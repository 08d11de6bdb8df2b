#!/usr/bin/env bash
# make demo: the lab cluster of SCENARIO.md sections 1-2, Flannel style. Three nodes on an underlay of their
# own, a loom agent per node, one pod per node wired by loom-cni; shows what the scenario inspects and proves
# TCP across nodes through the VXLAN overlay. Everything lives in network namespaces; `loom lab down` removes it.
set -euo pipefail
cd "$(dirname "$0")/.."
loom="$PWD/out/bin/loom"
c_head=$'\e[1;36m'; c_ok=$'\e[1;32m'; c_dim=$'\e[2m'; c_off=$'\e[0m'
[ -t 1 ] || { c_head=; c_ok=; c_dim=; c_off=; }
heading() { printf '\n%s== %s ==%s\n' "$c_head" "$*" "$c_off"; }
show() { printf '%s$ %s%s\n' "$c_dim" "$*" "$c_off"; "$@"; }
trap 'echo "demo failed; the lab stays up for a look: loom lab status, then loom lab down" >&2' ERR

heading "Bring up the lab: underlay, 3 nodes, an agent per node"
start=$(date +%s%N)
"$loom" lab up --nodes 3
echo "(lab up to all nodes Ready: $(( ($(date +%s%N) - start) / 1000000 )) ms)"

heading "Nodes (loom status on k8s-w1)"
state=/var/run/loom-lab
show "$loom" lab node exec k8s-w1 -- "$loom" status --socket "$state/nodes/k8s-w1/run/agent.sock"

heading "One pod per node, wired by loom-cni through each node's 10-loom.conflist"
for n in k8s-ctr k8s-w1 k8s-w2; do "$loom" lab pod add "pod-$n" --node "$n"; done
show "$loom" lab pod list

heading "Routes on each node (ip route | grep 10.244.)"
for n in k8s-ctr k8s-w1 k8s-w2; do
  echo "-- $n"
  "$loom" lab node exec "$n" -- sh -c 'ip -c route | grep 10.244.'
done

heading "The overlay on k8s-ctr: loom.1, its neighbours and FDB"
show "$loom" lab node exec k8s-ctr -- ip -d link show loom.1
show "$loom" lab node exec k8s-ctr -- ip neigh show dev loom.1
show "$loom" lab node exec k8s-ctr -- bridge fdb show dev loom.1
show "$loom" lab node exec k8s-ctr -- sh -c 'ip -br link show master cni0; ip -br addr show cni0'

heading "The CNI config the agent wrote on k8s-w1"
cat "$state/nodes/k8s-w1/net.d/10-loom.conflist"

heading "TCP from pod-k8s-ctr to pod-k8s-w1, across the VXLAN tunnel"
ip_w1=$("$loom" lab pod list | awk '$1 == "pod-k8s-w1" {print $3}'); ip_w1=${ip_w1%/*}
"$loom" lab exec pod-k8s-w1 -- sh -c 'echo "hello from $(hostname -I 2>/dev/null || echo pod-k8s-w1)" | busybox nc -l -p 8080 -w 5' &
sleep 0.5
reply=$("$loom" lab exec pod-k8s-ctr -- busybox nc -w 3 "$ip_w1" 8080 </dev/null)
wait || true
printf 'pod-k8s-ctr got: %s%s%s\n' "$c_ok" "$reply" "$c_off"
[ -n "$reply" ]
show "$loom" lab exec pod-k8s-ctr -- ping -c 2 -W 1 "$ip_w1"

heading "Done"
cat <<TXT
The lab stays up. Explore it:
  $loom lab status
  $loom lab node exec k8s-w1 -- ip route
  $loom lab exec pod-k8s-ctr -- ping $ip_w1
  $loom lab node exec k8s-w1 -- $loom status --socket $state/nodes/k8s-w1/run/agent.sock
Take it down:
  $loom lab down
TXT
