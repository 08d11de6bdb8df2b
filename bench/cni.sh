#!/usr/bin/env bash
# make bench: the CNI benchmark (bench/README.md). loom-cni against the reference bridge + host-local, ADD then DEL
# of 100 pods, p50/p99 and the ratios; a table on stdout, JSON in out/bench/. Runs after `make build`, as root.
# Everything happens inside namespaces named lb<pid>-*; nothing touches the machine's own network namespace.
# Exits non-zero only on an error (never because of a figure): performance is reported here, not asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (it creates network namespaces)" >&2; exit 1; }
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
for f in out/bin/loom-cni "$dll" /usr/lib/cni/bridge /usr/lib/cni/host-local; do
  [ -e "$f" ] || { echo "bench: $f is missing; run \`make build\` first" >&2; exit 1; }
done

export LOOM_BIN_DIR="$PWD/out/bin"
export LOOM_BENCH_OUT_DIR="$PWD/out/bench"
LOOM_BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || LOOM_BENCH_COMMIT+="-dirty"
export LOOM_BENCH_COMMIT
LOOM_BENCH_REF_VERSION=$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo unknown)
export LOOM_BENCH_REF_VERSION
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

# The harness cleans up in its own finally on SIGINT/SIGTERM/SIGHUP (it finishes the exec under way first);
# forward those to it and wait. If it is killed outright, its next start sweeps the lb<pid>-* it left behind.
dotnet "$dll" "$@" &
bench=$!
trap 'kill -TERM "$bench" 2>/dev/null || true' INT TERM HUP
rc=0
while :; do
  wait "$bench" && rc=0 || rc=$?
  # wait returns >128 when a trapped signal interrupted it while the harness is still cleaning up.
  kill -0 "$bench" 2>/dev/null || break
done
trap - INT TERM HUP
exit "$rc"
