#!/usr/bin/env bash
# Builds out/pkg/loom_<version>_<arch>.deb from what `make build` left in out/bin and out/bpf (make package).
# Layout (deploy/systemd/README.md): /usr/lib/loom/{loom,libe_sqlite3.so,bpf/*.o} with /usr/bin/loom a symlink (the
# AOT binary finds its library and BPF objects beside its real path), /usr/lib/cni/loom-cni with /opt/cni/bin/loom-cni
# a symlink, /etc/loom/{agent.json,cluster.yaml} as conffiles, /lib/systemd/system/loom-agent.service.
# Usage: scripts/package.sh [--out DIR]   (LOOM_BIN_DIR / LOOM_BPF_OUT override out/bin / out/bpf)
set -euo pipefail
cd "$(dirname "$0")/.."
out=out/pkg
while (($#)); do
  case "$1" in
    --out) out=$2; shift 2 ;;
    *) echo "package: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=${LOOM_BIN_DIR:-out/bin}
bpf=${LOOM_BPF_OUT:-out/bpf}

for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "package: $tool is missing (apt-get install dpkg-dev)" >&2; exit 1; }
done
for f in "$bin/loom" "$bin/loom-cni" "$bin/libe_sqlite3.so"; do
  [ -f "$f" ] || { echo "package: $f is missing: run make build first" >&2; exit 1; }
done
# The product's programs; test_*.o are the tests' own.
mapfile -t objs < <(find "$bpf" -maxdepth 1 -name '*.o' ! -name 'test_*' | sort)
((${#objs[@]})) || { echo "package: no BPF objects in $bpf: run make build first" >&2; exit 1; }

# The version has one source: the assembly's (loom --version, e.g. 1.0.0+<commit>); the commit is shortened.
raw=$("$bin/loom" --version)
version=$(sed -E 's/\+([0-9a-f]{7})[0-9a-f]*$/+git\1/' <<<"$raw")
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || { echo "package: '$raw' from loom --version is no Debian version" >&2; exit 1; }
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
install -d "$root/usr/lib/loom/bpf" "$root/usr/bin" "$root/usr/lib/cni" "$root/opt/cni/bin" "$root/etc/loom" \
  "$root/lib/systemd/system" "$root/usr/share/doc/loom" "$root/DEBIAN"
install -m 0755 "$bin/loom" "$root/usr/lib/loom/loom"
install -m 0644 "$bin/libe_sqlite3.so" "$root/usr/lib/loom/libe_sqlite3.so"
install -m 0644 "${objs[@]}" "$root/usr/lib/loom/bpf/"
ln -s ../lib/loom/loom "$root/usr/bin/loom"
install -m 0755 "$bin/loom-cni" "$root/usr/lib/cni/loom-cni"
ln -s ../../../usr/lib/cni/loom-cni "$root/opt/cni/bin/loom-cni"
install -m 0644 deploy/systemd/agent.json "$root/etc/loom/agent.json"
install -m 0644 examples/cluster/flannel.yaml "$root/etc/loom/cluster.yaml"
install -m 0644 deploy/systemd/loom-agent.service "$root/lib/systemd/system/loom-agent.service"
install -m 0644 deploy/systemd/README.md "$root/usr/share/doc/loom/README.md"
install -m 0644 deploy/debian/conffiles "$root/DEBIAN/conffiles"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"

# Shared libraries the executables link (dpkg-shlibdeps reads their ELF NEEDED entries), plus what is loaded by name
# at run time: libbpf.so.1 (Loom.Linux/Bpf/LibBpf.cs) and the firewall tools the agent runs (iptables-restore, nft).
mkdir -p "$stage/src/debian"
printf 'Source: loom\n\nPackage: loom\nArchitecture: any\n' > "$stage/src/debian/control"
shlibs=$(cd "$stage/src" && dpkg-shlibdeps -O "$root/usr/lib/loom/loom" "$root/usr/lib/loom/libe_sqlite3.so" "$root/usr/lib/cni/loom-cni" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
depends="$shlibs, libbpf1, iptables, nftables"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
  deploy/debian/control > "$root/DEBIAN/control"

mkdir -p "$out"
deb="$out/loom_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group "$root" "$deb" >/dev/null
echo "package: $deb ($version, $(du -h "$deb" | cut -f1))"
