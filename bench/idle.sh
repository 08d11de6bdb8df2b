#!/usr/bin/env bash
# The idle agent and `loom status` (bench/README.md, "Idle agent and loom status"): a 3-node lab of each given build
# (default out/bin/loom; `--base DIR` adds a baseline build, e.g. main's out/bin, run at the same time), idle for
# --idle seconds: CPU per agent from /proc/PID/stat; then `loom status` inside k8s-ctr, --runs times per variant,
# interleaved with `loom --version` of the same build (bench/exectime.py: the exec timed, CPU and minor faults from
# wait4). Labs are lbi<pid>-<n>- in /tmp/lbi<pid>-<n>-lab, taken down at the end, also on an error or Ctrl-C.
# Needs root and `make build`; exits non-zero only on an error.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: run as root (the lab creates network namespaces)" >&2; exit 1; }
builds=("$PWD/out/bin") idle=60 runs=100
while [ $# -gt 0 ]; do
  case $1 in
    --base) builds=("$2" "${builds[@]}"); shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: bench/idle.sh [--base DIR] [--idle 60] [--runs 100]" >&2; exit 2 ;;
  esac
done
for b in "${builds[@]}"; do
  for f in "$b/loom" "$b/loom-cni"; do [ -x "$f" ] || { echo "bench: $f is missing; run \`make build\` first" >&2; exit 1; }; done
done
export LOOM_BPF_DIR=${LOOM_BPF_DIR:-$PWD/out/bpf}
labs=()
down() { for i in "${!labs[@]}"; do "${builds[$i]}/loom" lab down --prefix "${labs[$i]}" --lab-dir "/tmp/${labs[$i]}lab" >/dev/null 2>&1 || true; done; }
trap down EXIT
trap 'exit 130' INT TERM HUP
for i in "${!builds[@]}"; do
  labs[$i]="lbi$$-$i-"
  (cd /tmp && "${builds[$i]}/loom" lab up --prefix "${labs[$i]}" --lab-dir "/tmp/${labs[$i]}lab" --timeout 120 | tail -1)
done
sleep 15 # the start's passes and the DNS pods settle
tck=$(getconf CLK_TCK)
declare -A t0
pids=$(for l in "${labs[@]}"; do pgrep -f "loom agent .*--config /tmp/${l}lab/" ; done)
for p in $pids; do t0[$p]=$(awk '{print $14+$15}' "/proc/$p/stat"); done
l0=$(cut -d' ' -f1-3 /proc/loadavg)
sleep "$idle"
echo "idle ${idle} s, load average $l0 -> $(cut -d' ' -f1-3 /proc/loadavg); CPU in % of one core (tick $((1000 / tck)) ms)"
for p in $pids; do
  cmd=$(tr '\0' ' ' <"/proc/$p/cmdline")
  printf '  %-48s %-8s %.3f%%\n' "${cmd%% agent*}" "$(sed 's/.*--node \([^ ]*\).*/\1/' <<<"$cmd")" \
    "$(echo "($(awk '{print $14+$15}' "/proc/$p/stat") - ${t0[$p]}) * 100 / $tck / $idle" | bc -l)"
done
args=()
for i in "${!labs[@]}"; do
  args+=("status-$i=${builds[$i]}/loom status --socket /tmp/${labs[$i]}lab/nodes/k8s-ctr/run/agent.sock" "version-$i=${builds[$i]}/loom --version")
done
echo "loom status in k8s-ctr (0..: ${builds[*]}), ms:"
ip netns exec "${labs[0]}k8s-ctr" python3 bench/exectime.py "$runs" "${args[@]}"
