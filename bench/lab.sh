#!/usr/bin/env bash
# The lab at scale (bench/README.md, "Lab benchmark"): for each service backend, a 3-node lab of its own, `loom lab
# apply` of N Services (default 10000), the time until every agent has programmed them all, the agents' memory, then
# event to live: a new Service written to the store until its ClusterIP answers from a pod on every node. A table on
# stdout, JSON in out/bench/lab-<date>.json. Runs after `make build`, as root; exits non-zero only on an error.
# Each lab is named lbl<pid>-<ipt|nft|ebpf>-* with its directory /tmp/lbl<pid>-<b>-lab (never the default lab),
# taken down with `loom lab down` at the end of its backend, also on an error or Ctrl-C; a killed run's labs are
# taken down by the next start. The root namespace's iptables-save and nft list ruleset are compared before and after.
# Options go to the harness: --services 10000 --probes 30 --backends iptables,nftables,ebpf --timeout 600
# --probe-timeout 60 --probe-budget 300 --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (the lab creates network namespaces)" >&2; exit 1; }
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "bench: $dll is missing; run \`make build\` first" >&2; exit 1; }
bin=${LOOM_BIN_DIR:-$PWD/out/bin}
for f in "$bin/loom" "$bin/loom-cni" out/bpf/lb4.o; do
  [ -e "$f" ] || { echo "bench: $f is missing; run \`make build\` first" >&2; exit 1; }
done
export LOOM_BIN_DIR="$bin"
. bench/lib.sh
bench_start lbl
# The harness takes its lab down on SIGINT/SIGTERM/SIGHUP (forwarded to it); if killed outright, its next start does.
rc=0
bench_harness lab "$@" || rc=$?
bench_finish "lab bench"
exit "$rc"
