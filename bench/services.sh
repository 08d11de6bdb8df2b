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
for tool in iptables-restore iptables-save nft; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
done

export LOOM_BENCH_OUT_DIR="$PWD/out/bench"
LOOM_BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || LOOM_BENCH_COMMIT+="-dirty"
export LOOM_BENCH_COMMIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

tmp=$(mktemp -d /tmp/lbs-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Read-only snapshots of the machine's own rules (comment lines carry timestamps).
root_rules() { { iptables-save 2>&1 | grep -v '^#' || true; echo "--- nft"; nft list ruleset 2>&1 || true; } }
root_rules >"$tmp/root.before"

# One harness process per backend, so that each one's RSS is its own; the harness cleans up in its own finally on
# SIGINT/SIGTERM/SIGHUP (forwarded to it here); if it is killed outright, its next start sweeps the lbs<pid>-* left.
harness() {
  dotnet "$dll" services "$@" &
  local pid=$! rc=0
  trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM HUP
  while :; do
    wait "$pid" && rc=0 || rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  trap - INT TERM HUP
  return "$rc"
}

start=$SECONDS
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

root_rules >"$tmp/root.after"
if cmp -s "$tmp/root.before" "$tmp/root.after"; then
  ipt_lines=$(sed -n '/^--- nft$/q;p' "$tmp/root.before" | grep -c . || true)
  nft_lines=$(sed -n '/^--- nft$/,$p' "$tmp/root.before" | tail -n +2 | grep -c . || true)
  echo "root namespace: iptables-save ($ipt_lines lines) and nft list ruleset ($nft_lines lines) unchanged"
else
  echo "WARNING: the root namespace's rules changed during the run (the bench never writes there; another process did?):"
  diff "$tmp/root.before" "$tmp/root.after" | head -20 || true
fi
left=$(ip netns list 2>/dev/null | grep -c '^lbs[0-9]' || true)
[ "$left" = 0 ] || echo "WARNING: $left lbs* namespace(s) left: $(ip netns list | grep '^lbs[0-9]' | tr '\n' ' ')"
pins=$(find /sys/fs/bpf -maxdepth 1 -name 'lbs[0-9]*' 2>/dev/null | wc -l)
[ "$pins" = 0 ] || echo "WARNING: $pins bpffs pin director(ies) left: $(find /sys/fs/bpf -maxdepth 1 -name 'lbs[0-9]*' | tr '\n' ' ')"
echo "services bench: total run time $((SECONDS - start)) s"
exit "$rc"
