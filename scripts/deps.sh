#!/usr/bin/env bash
# Installs the Debian packages Loom builds, tests and demos with; only those missing, so a second run is instant.
set -euo pipefail
pkgs=(iproute2 iptables nftables clang llvm libbpf-dev bpftool etcd-server iperf3 curl dnsutils iputils-ping
      containernetworking-plugins podman runc jq busybox-static dpkg-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  [ "$(id -u)" = 0 ] || { echo "deps: run as root to install packages" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "deps: the .NET 10 SDK (dotnet) is required and is not on PATH" >&2; exit 1; }
dotnet --list-sdks | grep -q '^10\.' || { echo "deps: .NET SDK 10 is required; found: $(dotnet --list-sdks)" >&2; exit 1; }
# bpffs for the eBPF datapath (a no-op when already mounted).
mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
echo "deps: ok"
