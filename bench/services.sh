#!/usr/bin/env bash
# make bench: the services benchmark (bench/README.md). The iptables, nftables and eBPF service backends with N = 1, 1000,
# 10000 services of 4 endpoints: sync times, connect rate and latency through the ClusterIP and straight to the pods,
# memory; a table on stdout, JSON in out/bench/services-<date>.json. Runs after `make build`, as root.
# Everything happens inside namespaces named lbs<pid>-*; iptables-restore and nft run only inside them; the eBPF
# backend's tc programs go only on the client pod's host-side veth inside them, its maps are pinned in
# /sys/fs/bpf/lbs<pid>-ebpf (removed at the end; a killed run's are swept by the next). The root
# namespace's iptables-save and nft list ruleset are compared before and after. Exits non-zero only on an error.
# Options go to the harness: --services 1,1000,10000 --seconds 2 --clients 1 --reps 5 --sync-budget 5 --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it creates network namespaces)" >&2; exit 1; }
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "bench: $dll is missing; run \`make build\` first" >&2; exit 1; }
. bench/lib.sh
bench_start lbs

# One harness process per backend, so that each one's RSS is its own.
harness() { bench_harness services "$@"; }

rc=0
out=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=(--out "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
[ -e out/bpf/lb4.o ] || { echo "bench: out/bpf/lb4.o is missing; run \`make build\` first" >&2; exit 1; }
for backend in iptables nftables ebpf; do
  harness --backend "$backend" --part "$tmp/$backend.json" ${args[@]+"${args[@]}"} || { rc=$?; break; }
done
[ "$rc" = 0 ] && { harness --merge "$tmp/iptables.json" "$tmp/nftables.json" "$tmp/ebpf.json" ${out[@]+"${out[@]}"} || rc=$?; }

bench_finish "services bench"
exit "$rc"
