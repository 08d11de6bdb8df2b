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
for tool in iptables-restore iptables-save nft; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

export LOOM_BIN_DIR="$bin"
export LOOM_BENCH_OUT_DIR="$PWD/out/bench"
LOOM_BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || LOOM_BENCH_COMMIT+="-dirty"
export LOOM_BENCH_COMMIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

tmp=$(mktemp -d /tmp/lbl-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Read-only snapshots of the machine's own rules (comment lines carry timestamps).
root_rules() { { iptables-save 2>&1 | grep -v '^#' || true; echo "--- nft"; nft list ruleset 2>&1 || true; } }
root_rules >"$tmp/root.before"

start=$SECONDS
# The harness takes its lab down on SIGINT/SIGTERM/SIGHUP (forwarded here); if killed outright, its next start does.
dotnet "$dll" lab "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM HUP
while :; do
  wait "$pid" && rc=0 || rc=$?
  kill -0 "$pid" 2>/dev/null || break
done
trap - INT TERM HUP

root_rules >"$tmp/root.after"
if cmp -s "$tmp/root.before" "$tmp/root.after"; then
  echo "root namespace: iptables-save and nft list ruleset unchanged"
else
  echo "WARNING: the root namespace's rules changed during the run (the bench never writes there; another process did?):"
  diff "$tmp/root.before" "$tmp/root.after" | head -20 || true
fi
left=$(ip netns list 2>/dev/null | grep -c '^lbl[0-9]' || true)
[ "$left" = 0 ] || echo "WARNING: $left lbl* namespace(s) left: $(ip netns list | grep '^lbl[0-9]' | cut -d' ' -f1 | tr '\n' ' ')"
pins=$(find /sys/fs/bpf -maxdepth 1 -name 'lbl[0-9]*' 2>/dev/null | wc -l)
[ "$pins" = 0 ] || echo "WARNING: $pins bpffs pin director(ies) left: $(find /sys/fs/bpf -maxdepth 1 -name 'lbl[0-9]*' | tr '\n' ' ')"
echo "lab bench: total run time $((SECONDS - start)) s"
exit "$rc"
