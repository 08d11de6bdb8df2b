#!/usr/bin/env bash
# The agent's own cost (bench/README.md, "Agent benchmark"): for each service backend and each agent build (aot:
# out/bin/loom as shipped; jit: the JIT apphost of the same commit, src/Loom.Cli/bin/Release/net10.0/linux-x64/loom,
# the baseline), a 1-node lab whose agent is that binary; its RSS, peak RSS and idle CPU with no Service of the bench,
# then with N Services written straight to the store. A table on stdout, JSON in out/bench/agent-<date>.json. Runs
# after `make build`, as root; exits non-zero only on an error. Each lab is lba<pid>-<ipt|nft|ebpf>-<aot|jit>-* in
# /tmp/<prefix>lab, taken down at the end of its run, also on an error or Ctrl-C; a killed run's labs by the next start.
# Options go to the harness: --services 10000 --backends iptables,nftables,ebpf --variants aot,jit --idle 30
# --timeout 600 --out FILE.
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
# The jit agent: the apphost `dotnet build` makes beside the assemblies (the AOT publish of `make build` removes it;
# an incremental build of the CLI alone puts it back in seconds). LOOM_JIT_BIN names another one.
if [ -z "${LOOM_JIT_BIN:-}" ] && [[ " $* " != *" --variants aot "* ]]; then
  DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 dotnet build src/Loom.Cli/Loom.Cli.csproj -c Release -nologo -clp:ErrorsOnly --no-dependencies >/dev/null \
    || { echo "bench: cannot build the jit agent (dotnet build src/Loom.Cli)" >&2; exit 1; }
fi
. bench/lib.sh
bench_start lba
rc=0
bench_harness agent "$@" || rc=$?
bench_finish "agent bench"
exit "$rc"
