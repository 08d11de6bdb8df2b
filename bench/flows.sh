#!/usr/bin/env bash
# The flow-events benchmark (bench/README.md, "Flow events benchmark"): sequential new TCP connections between two pods
# on one node through policy.o on both host veths (the server's ingress enforced), with flow events off, on with medium
# aggregation (the default) and on with none, the modes rotating within each repetition, a reader draining the ring as
# the agent does; conn/s per mode and the ratio to off (goal: medium >= 0.95x). A table on stdout, JSON in
# out/bench/flows-<date>.json. Runs after `make build`, as root; exits non-zero only on an error.
# Namespaces lbf<pid>-node/pod1/pod2 and the bpffs directory /sys/fs/bpf/lbf<pid>-pins are the run's own, removed at the
# end, also on an error or Ctrl-C; a killed run's are removed by the next start. Nothing goes in the root namespace.
# Options go to the harness: --seconds 3 --reps 5 --out FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it creates network namespaces)" >&2; exit 1; }
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "bench: $dll is missing; run \`make build\` first" >&2; exit 1; }
for f in out/bpf/policy.o out/bpf/flow_events.o; do
  [ -e "$f" ] || { echo "bench: $f is missing; run \`make build\` first" >&2; exit 1; }
done
export LOOM_BPF_DIR="${LOOM_BPF_DIR:-$PWD/out/bpf}"
. bench/lib.sh
bench_start lbf
rc=0
bench_harness flows "$@" || rc=$?
bench_finish "flows bench"
exit "$rc"
