#!/usr/bin/env bash
# The SQLite store's size under churn (bench/README.md): 10,000 Service changes (create, update, update, delete, cycling
# over 100 Services) on a fresh file with auto-compaction off, at the default retention (10,000 revisions) and at
# 1,000; the database and WAL sizes after 1,000 and 10,000 changes, and the time. Bounded: with compaction on, the size
# after 10,000 changes is about the size after 1,000 (once the retention is reached). Runs after `make build`; needs
# no root and touches no network: only a temporary directory (removed at the end).
# Options go to the harness: --changes 10000 --services 100 --keep 1000 --dir DIR (where the files go; default /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "bench: $dll is missing; run \`make build\` first" >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
start=$SECONDS
dotnet "$dll" store "$@"
echo "store bench: total run time $((SECONDS - start)) s"
