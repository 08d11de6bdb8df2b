#!/usr/bin/env bash
# The network-policy benchmark (bench/README.md, "Policy benchmark"): on a 3-node lab of its own (Cilium-style
# cluster, examples/cluster/cilium.yaml, by default), the new-connection rate and latency between two pods on different
# nodes without policy and with 100 NetworkPolicies over 1,000 identities selecting the server (alternating); the time
# from applying an allow to a connection passing from every node; the agents' memory before and after the 1,000
# identities and 100 policies. A table on stdout, JSON in out/bench/policy-<date>.json. Runs after `make build`, as
# root; exits non-zero only on an error.
# The lab is named lbp<pid>-<cluster>-* with its directory /tmp/lbp<pid>-<cluster>-lab (never the default lab); every
# connection runs inside its pods' namespaces; `loom lab down` takes it down at the end, also on an error or Ctrl-C;
# a killed run's lab is taken down by the next start. The root namespace's iptables-save and nft list ruleset are
# compared before and after.
# Options go to the harness: --cluster cilium|flannel --seconds 3 --reps 10 --repeats 20 --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (the lab creates network namespaces)" >&2; exit 1; }
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "bench: $dll is missing; run \`make build\` first" >&2; exit 1; }
bin=${LOOM_BIN_DIR:-$PWD/out/bin}
for f in "$bin/loom" "$bin/loom-cni" out/bpf/lb4.o out/bpf/policy.o out/bpf/host_routing.o; do
  [ -e "$f" ] || { echo "bench: $f is missing; run \`make build\` first" >&2; exit 1; }
done
export LOOM_BIN_DIR="$bin"
. bench/lib.sh
bench_start lbp
# The harness takes its lab down on SIGINT/SIGTERM/SIGHUP (forwarded to it); if killed outright, its next start does.
rc=0
bench_harness policy "$@" || rc=$?
bench_finish "policy bench"
exit "$rc"
