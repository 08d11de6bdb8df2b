#!/usr/bin/env bash
# Draws the benchmarks' JSON as SVG (bench/README.md, "Charts"): the newest out/bench/<kind>-<date>.json of each
# kind (cni, services, datapath) into bench/charts/*.svg. A kind with no JSON is skipped with a line saying so.
# No root, no network: it only reads JSON and writes SVG. Runs after `make build`.
# Options: --in DIR (out/bench) --out DIR (bench/charts).
set -euo pipefail
cd "$(dirname "$0")/.."
dll=bench/Loom.Bench/bin/Release/net10.0/Loom.Bench.dll
[ -e "$dll" ] || { echo "charts: $dll is missing; run \`make build\` first" >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
exec dotnet "$dll" charts "$@"
