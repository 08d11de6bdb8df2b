#!/usr/bin/env bash
# The NodePort benchmark (bench/README.md, "NodePort benchmark"): for each service backend, a 3-node lab of its own, one
# agnhost replica on k8s-w1 behind a NodePort Service, and the new-connection rate from the lab's underlay client
# (192.168.10.1) to k8s-w1's IP:nodePort against the same client straight to the pod (a route to k8s-w1's pod CIDR via
# its eth1 IP, added in the lab's underlay namespace), at 1 and at 10000 Services; the ratio per backend. A table on
# stdout, JSON in out/bench/nodeport-<date>.json. Runs after `make build`, as root; exits non-zero only on an error.
# Each lab is named lnp<pid>-<ipt|nft|ebpf>-* with its directory /tmp/lnp<pid>-<b>-lab (never the default lab), taken
# down with `loom lab down` at the end of its backend, also on an error or Ctrl-C; a killed run's labs are taken down
# by the next start. The root namespace's iptables-save and nft list ruleset are compared before and after.
# Options go to the harness: --services 1,10000 --seconds 4 --slices 8 --backends iptables,nftables,ebpf --timeout 600 --out FILE.
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
bench_start lnp
rc=0
bench_harness nodeport "$@" || rc=$?
bench_finish "nodeport bench"
exit "$rc"
