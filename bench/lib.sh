# Shared by the bench scripts (sourced, after `cd` to the repository): the tool checks, the environment the harness
# reads, the root-namespace rule snapshots, running the harness with signals forwarded, and the checks at the end.
# $dll must name the harness; bench_start takes the run's namespace prefix (e.g. lbs), which nothing else uses.

bench_start() {
  bench_prefix=$1
  for tool in iptables-restore iptables-save nft; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
  done
  export LOOM_BENCH_OUT_DIR="$PWD/out/bench"
  LOOM_BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  git diff --quiet HEAD 2>/dev/null || LOOM_BENCH_COMMIT+="-dirty"
  export LOOM_BENCH_COMMIT
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
  tmp=$(mktemp -d "/tmp/$bench_prefix-bench.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  bench_root_rules >"$tmp/root.before"
  start=$SECONDS
}

# Read-only snapshots of the machine's own rules (comment lines carry timestamps).
bench_root_rules() { { iptables-save 2>&1 | grep -v '^#' || true; echo "--- nft"; nft list ruleset 2>&1 || true; } }

# Runs the harness; SIGINT/SIGTERM/SIGHUP are forwarded to it, and it cleans up in its own finally (if it is killed
# outright, its next start sweeps what it left).
bench_harness() {
  dotnet "$dll" "$@" &
  local pid=$! rc=0
  trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM HUP
  while :; do
    wait "$pid" && rc=0 || rc=$?
    kill -0 "$pid" 2>/dev/null || break
  done
  trap - INT TERM HUP
  return "$rc"
}

# The root namespace's rules unchanged, no namespace or bpffs pin of this run left; the total time. $1: the bench's name.
bench_finish() {
  bench_root_rules >"$tmp/root.after"
  if cmp -s "$tmp/root.before" "$tmp/root.after"; then
    local ipt nftl
    ipt=$(sed -n '/^--- nft$/q;p' "$tmp/root.before" | grep -c . || true)
    nftl=$(sed -n '/^--- nft$/,$p' "$tmp/root.before" | tail -n +2 | grep -c . || true)
    echo "root namespace: iptables-save ($ipt lines) and nft list ruleset ($nftl lines) unchanged"
  else
    echo "WARNING: the root namespace's rules changed during the run (the bench never writes there; another process did?):"
    diff "$tmp/root.before" "$tmp/root.after" | head -20 || true
  fi
  local left pins
  left=$(ip netns list 2>/dev/null | grep -c "^$bench_prefix[0-9]" || true)
  [ "$left" = 0 ] || echo "WARNING: $left $bench_prefix* namespace(s) left: $(ip netns list | grep "^$bench_prefix[0-9]" | cut -d' ' -f1 | tr '\n' ' ')"
  pins=$(find /sys/fs/bpf -maxdepth 1 -name "$bench_prefix[0-9]*" 2>/dev/null | wc -l)
  [ "$pins" = 0 ] || echo "WARNING: $pins bpffs pin director(ies) left: $(find /sys/fs/bpf -maxdepth 1 -name "$bench_prefix[0-9]*" | tr '\n' ' ')"
  echo "$1: total run time $((SECONDS - start)) s"
}
