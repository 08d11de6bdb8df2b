#!/usr/bin/env bash
# The datapath benchmark (bench/README.md, "Datapath benchmark"): for each network configuration (flannel.yaml,
# cilium-tunnel.yaml, bench/native-legacy.yaml, cilium.yaml), a 2-node lab of its own, one pod per node, and
# cross-node TCP throughput (iperf3, 1 and 4 streams) and 1-byte round-trip latency, pod to pod and eth1 to eth1 (the
# underlay, the baseline) in the same lab; the ratios and the issue's goals. A table on stdout, JSON in
# out/bench/datapath-<date>.json. Runs after `make build`, as root. Exits 3 when a configuration does not work yet
# (reported as "not working: <reason>", the others still measured), 1 on an error, 0 otherwise.
# Each lab is named lbd<pid>-<key>-* with its directory /tmp/lbd<pid>-<key>-lab (never the default lab); iperf3 and
# the ping-pong run only inside its namespaces; `loom lab down` takes it down after its configuration, also on an
# error or Ctrl-C; a killed run's labs are taken down by the next start. The root namespace's iptables-save and
# nft list ruleset are compared before and after.
# Options go to the harness: --configs flannel,tunnel,native,ebpf --reps 3 --seconds 3 --latency-seconds 2
# --reach-timeout 30 --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (the lab creates network namespaces)" >&2; exit 1; }
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "bench: $dll is missing; run \`make build\` first" >&2; exit 1; }
bin=${LOOM_BIN_DIR:-$PWD/out/bin}
for f in "$bin/loom" "$bin/loom-cni" out/bpf/lb4.o out/bpf/host_routing.o out/bpf/masq.o; do
  [ -e "$f" ] || { echo "bench: $f is missing; run \`make build\` first" >&2; exit 1; }
done
for tool in iperf3 bpftool nsenter; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/deps.sh)" >&2; exit 1; }
done
export LOOM_BIN_DIR="$bin"
. bench/lib.sh
bench_start lbd
# The harness takes its lab down on SIGINT/SIGTERM/SIGHUP (forwarded to it); if killed outright, its next start does.
rc=0
bench_harness datapath "$@" || rc=$?
bench_finish "datapath bench"
exit "$rc"
