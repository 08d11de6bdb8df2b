#!/usr/bin/env bash
# `make fuzz`: runs each fuzz target under afl-fuzz for FUZZ_SECONDS (default 60) with the Loom assemblies (and
# YamlDotNet) instrumented by SharpFuzz, then prints execs, paths and crashes per target. FUZZ_TARGETS picks targets.
# When afl-fuzz cannot start here, the target runs in the in-process random mutation loop instead (no coverage
# feedback), and the summary says so. Exits non-zero when any target crashed or hung.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-netconf cni-env manifest agent-config cluster-config agent-request netlink-dump}
out=$PWD/out/fuzz
export PATH="$PATH:$HOME/.dotnet/tools" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if ! command -v afl-fuzz >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
if ! command -v sharpfuzz >/dev/null; then
  dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0 >/dev/null
fi

rm -rf "$out/bin"
dotnet build tests/Fuzz/Loom.Fuzz/Loom.Fuzz.csproj -c Release -nologo -clp:ErrorsOnly -o "$out/bin" || exit 1
for asm in Loom.Core Loom.Linux Loom.Lab Loom.Agent YamlDotNet; do
  sharpfuzz "$out/bin/$asm.dll" >/dev/null || { echo "sharpfuzz could not instrument $asm.dll" >&2; exit 1; }
done

# afl-fuzz's start-up checks: the CPU governor (not ours to change), core_pattern (a pipe to a crash handler would
# make it refuse; we keep the machine's setting and only lose core files), binding to a free core (the cores are
# shared), and the target being an AFL-compiled binary (SharpFuzz speaks the fork-server protocol itself).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1

field() { sed -n "s/^$2 *: *//p" "$1" 2>/dev/null | head -1; }
summary=()
bad=0
for t in $targets; do
  findings="$out/findings/$t"
  rm -rf "$findings"
  mkdir -p "$findings"
  timeout $((secs + 120)) afl-fuzz -i "tests/Fuzz/corpus/$t" -o "$findings" -V "$secs" -t 5000 -m none -- "$out/bin/Loom.Fuzz" "$t" \
    >"$findings.log" 2>&1
  stats="$findings/default/fuzzer_stats"
  if [ -f "$stats" ]; then
    execs=$(field "$stats" execs_done)
    paths=$(field "$stats" corpus_count); paths=${paths:-$(field "$stats" paths_total)}
    crashes=$(field "$stats" saved_crashes); crashes=${crashes:-$(field "$stats" unique_crashes)}
    hangs=$(field "$stats" saved_hangs); hangs=${hangs:-$(field "$stats" unique_hangs)}
    line="$t: execs $execs, paths $paths, crashes $crashes, hangs $hangs (afl-fuzz)"
    if [ "${crashes:-0}" != 0 ] || [ "${hangs:-0}" != 0 ]; then
      bad=1
      line="$line; inputs in $findings/default/crashes and hangs"
    fi
  else
    echo "afl-fuzz did not run $t (see $findings.log); falling back to the in-process mutation loop" >&2
    tail -5 "$findings.log" >&2
    result=$("$out/bin/Loom.Fuzz" --mutate "$t" "$secs" "tests/Fuzz/corpus/$t" "$findings") || bad=1
    echo "$result" | grep -v '^execs' >&2
    line="$t: $(echo "$result" | tail -1) (mutation loop, NOT afl-fuzz)"
  fi
  echo "$line"
  summary+=("$line")
done

echo
echo "fuzz summary (${secs}s per target):"
printf '  %s\n' "${summary[@]}"
exit $bad
