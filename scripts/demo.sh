#!/usr/bin/env bash
# make demo: the scenario (docs/scenario.md) in the lab: sections 1-4, then section 5's live migration, then NodePort and LoadBalancer Services from outside the nodes (issue 16), NetworkPolicy (issue 14), flows and the connectivity test (issue 15). Three nodes on an underlay of their own (k8s-ctr, k8s-w1,
# k8s-w2), a loom agent per node (Flannel-style VXLAN overlay, kube-proxy-style iptables Services), the cluster
# DNS, the scenario's YAML applied; then what the write-up inspects. Everything lives in network namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
loom="$PWD/out/bin/loom"
. scripts/colour.sh
heading() { printf '\n%s== %s ==%s\n' "$c_head" "$*" "$c_off"; }
show() { printf '%s$ %s%s\n' "$c_dim" "${*/#$loom/loom}" "$c_off"; "$@"; }
# 10 x curl webpod from curl-pod: the answering hostnames counted; both replicas should answer.
curl_webpod_10x() {
  for _ in $(seq 10); do
    "$loom" lab exec curl-pod -- curl -s --max-time 5 webpod | awk '/^Hostname:/ {print $2}'
  done | sort | uniq -c | tee /tmp/loom-demo-hostnames.$$
  [ "$(wc -l < /tmp/loom-demo-hostnames.$$)" -ge 2 ] && printf '%sboth replicas answered%s\n' "$c_ok" "$c_off"
  rm -f /tmp/loom-demo-hostnames.$$
}
trap 'echo "demo failed; the lab stays up for a look: loom lab status, then loom lab down" >&2' ERR
started=$(date +%s%N)

heading "1. The cluster: an underlay, 3 nodes, an agent per node, cluster DNS"
"$loom" lab up --nodes 3
show "$loom" lab get nodes -o wide

heading "3. The sample application (examples/scenario/*.yaml)"
show "$loom" lab apply -f examples/scenario/webpod.yaml
show "$loom" lab apply -f examples/scenario/curl-pod.yaml
show "$loom" lab get pods -o wide
show "$loom" lab get svc,endpoints 2>/dev/null || { "$loom" lab get svc; "$loom" lab get endpoints; }

heading "2. Flannel-style routes on each node (ip route | grep 10.244.)"
for n in k8s-ctr k8s-w1 k8s-w2; do
  echo "-- $n"
  "$loom" lab node exec "$n" -- sh -c "ip $ip_colour route | grep 10.244."
done

# A webpod on a node other than curl-pod's (k8s-ctr).
read -r far_pod far_ip far_node < <("$loom" lab get pods -o wide | awk '$1 ~ /^webpod-/ && $7 != "k8s-ctr" {print $1, $6, $7; exit}')

heading "3. curl-pod (k8s-ctr) -> $far_pod on $far_node by pod IP, across the VXLAN tunnel"
show "$loom" lab exec curl-pod -- curl -s --max-time 5 "$far_ip"

heading "3. nslookup webpod (answered by the cluster DNS behind 10.96.0.10)"
show "$loom" lab exec curl-pod -- nslookup webpod

heading "3. 10 x curl webpod: the Service spreads requests over both replicas"
curl_webpod_10x

heading "4. kube-proxy's iptables rules for webpod on k8s-ctr"
show "$loom" explain service default/webpod --node k8s-ctr

heading "The picture (Flannel-style)"
"$loom" lab topology --svg "$PWD/out/lab-topology-flannel.svg"

heading "5. Live migration to the Cilium-style network, node by node, under a probe"
echo "(cordon, drain, label, restart the agent, reboot, verify, uncordon: workers first, then k8s-ctr; then finalize)"
# A failed probe request or a rolled-back node makes lab migrate exit 1: said, and the rest shown all the same.
show "$loom" lab migrate || printf '%sloom lab migrate: not clean (see FAILED / ROLLED BACK above)%s\n' "$c_err" "$c_off"

heading "5. After: cilium status on each node"
for n in k8s-ctr k8s-w1 k8s-w2; do
  echo "-- $n"
  "$loom" status --node "$n" | grep -E '^(Routing|Host Routing|Masquerading|KubeProxyReplacement):'
done

heading "5. ip route on each node: native routes via eth1, no loom.1, no cni0"
for n in k8s-ctr k8s-w1 k8s-w2; do
  echo "-- $n"
  "$loom" lab node exec "$n" -- sh -c "ip $ip_colour route; ip -o link show | awk -F': ' '{print \$2}' | sed 's/@.*//' | tr '\n' ' '; echo"
done

heading "5. Pods on the new pool (10.245.0.0/16)"
show "$loom" lab get pods -A -o wide

heading "5. kube-proxy's rules are gone: KUBE-/LOOM- rules in iptables-save per node"
for n in k8s-ctr k8s-w1 k8s-w2; do
  printf '%s: %s\n' "$n" "$("$loom" lab node exec "$n" -- sh -c 'iptables-save | grep -c -E "KUBE-|LOOM-" || true')"
done

heading "5. 10 x curl webpod from a new curl-pod (drain took the old one): both replicas, eBPF load balancing"
"$loom" lab apply -f examples/scenario/curl-pod.yaml >/dev/null
curl_webpod_10x

heading "The picture (Cilium-style)"
"$loom" lab topology --svg "$PWD/out/lab-topology.svg"

heading "6. Services from outside the nodes: NodePort and LoadBalancer (examples/scenario/webpod-nodeport.yaml)"
show "$loom" lab apply -f examples/scenario/webpod-nodeport.yaml
show "$loom" lab get svc
# From the underlay's router address (192.168.10.1), outside every node; whoami prints who it saw as the client.
from_outside() { { "$loom" lab underlay exec -- curl -s --max-time 3 "$1" || true; } | awk '/^(Hostname|RemoteAddr):/ {printf "%s ", $0} END {print ""}'; }
printf 'externalTrafficPolicy Cluster (node port 30080): every node answers; a webpod on another node sees the node asked as the client (SNAT), one on that node sees 192.168.10.1\n'
for ip in 192.168.10.100 192.168.10.101 192.168.10.102; do
  printf '  %s:30080 -> ' "$ip"; from_outside "http://$ip:30080/"
done
printf 'externalTrafficPolicy Local (node port 30081): only nodes with a webpod answer, and it sees 192.168.10.1 itself\n'
for ip in 192.168.10.100 192.168.10.101 192.168.10.102; do
  printf '  %s:30081 -> ' "$ip"
  out=$(from_outside "http://$ip:30081/"); [ -n "${out// /}" ] && echo "$out" || echo "no answer (no local webpod: dropped)"
  printf '  %s:30082 health check -> HTTP %s\n' "$ip" "$("$loom" lab underlay exec -- curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$ip:30082/" || true)"
done
show "$loom" service list --node k8s-ctr

heading "7. NetworkPolicy (policyEnforcementMode default since finalize): webpod only from app=curl"
show "$loom" lab apply -f examples/policy/webpod-from-curl.yaml
"$loom" lab apply -f examples/policy/intruder.yaml >/dev/null
show "$loom" policy list
webpod_pod=$("$loom" lab get pods | awk '$1 ~ /^webpod-/ {print $1; exit}')
show "$loom" explain policy "default/$webpod_pod"

heading "7. curl-pod (app=curl) still reaches webpod; intruder (app=intruder) is dropped"
curl_webpod_10x
if show "$loom" lab exec intruder -- curl -s --max-time 3 webpod; then
  printf '%sintruder got through: the policy is not enforced%s\n' "$c_err" "$c_off"
else
  printf '%sintruder: no answer in 3 s (dropped by bpf/policy.c on the webpod veths)%s\n' "$c_ok" "$c_off"
fi
show "$loom" identity list

heading "8. Flows (loom lab observe, as hubble observe): the intruder's drop, on webpod's node"
show "$loom" lab observe --verdict DROPPED --from-pod default/intruder --last 3

heading "8. Flows: the webpod Service translated by eBPF at the socket, then curl-pod to a webpod, node to node"
show "$loom" lab observe --type translation --to-service default/webpod --last 3
show "$loom" lab observe --from-pod default/curl-pod --to-pod default/webpod --last 8

heading "8. loom lab connectivity test (its own namespace, pods and Services; removed after)"
show "$loom" lab connectivity test || printf '%sloom lab connectivity test: failures (see above)%s\n' "$c_err" "$c_off"

heading "Done in $(( ($(date +%s%N) - started) / 1000000 )) ms"
cat <<TXT
The lab stays up. Explore it:
  out/bin/loom lab get pods -o wide
  out/bin/loom lab exec curl-pod -- curl -s webpod
  out/bin/loom lab underlay exec -- curl -s http://192.168.10.100:30080/
  out/bin/loom lab node exec k8s-w1 -- ip route
  out/bin/loom status --node k8s-w1
  out/bin/loom explain service default/webpod --node k8s-w2
  out/bin/loom explain policy default/$webpod_pod
  out/bin/loom lab observe --follow
Take it down:
  out/bin/loom lab down
TXT
