#!/bin/bash
# dkms-time.sh ABI REPS OUT [WRAP...]: op 7 of `make bench`. The real DKMS
# builds vfio-core for the amd64 kernel ABI, once untimed when REPS > 1 (it
# makes the signing key, warms the page cache) and REPS times timed, each into a
# fresh throw-away DKMS tree (nothing is written to the machine's
# /var/lib/dkms, /usr/src or /lib/modules; as tests/host/dkms_test.sh). Then
# the sizes of the DKMS-built vfio.ko and the kernel's stock one
# (ko-size.sh). Appends rows to OUT:
#   ARCH<TAB>KERNEL<TAB>WHAT<TAB>VALUE<TAB>UNIT
# WRAP: a command prefix for each build (a CPU slot allocator).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/../vm/harness.sh"
[ $# -ge 3 ] || die "usage: dkms-time.sh ABI REPS OUT [WRAP...]"
abi=$1 reps=$2 out=$3
shift 3
[ "$(id -u)" = 0 ] || die "needs root (dkms)"
command -v dkms >/dev/null || die "no dkms (tests/deps.sh installs it)"

kv=$(kver amd64 "$abi")
ad=$(abi_dir amd64 "$abi")
kdir=$ad/root/lib/modules/$kv/build
"$harness_dir/fetch.sh" amd64 "$abi" >/dev/null
w=$(mktemp -d "${TMPDIR:-/tmp}/bench-dkms.XXXXXX")
trap 'rm -rf "$w"' EXIT
name=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$repo_dir/dkms.conf")
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$repo_dir/dkms.conf")
if [ -z "$name" ] || [ -z "$version" ]; then
	die "no PACKAGE_NAME/PACKAGE_VERSION in dkms.conf"
fi
# The sources as `make install` puts them in /usr/src.
"$repo_dir/scripts/vfio-core-install" stage "$w/usr/src/$name-$version" >/dev/null
# A throw-away signing key, never the machine's /var/lib/dkms/mok.key.
export mok_signing_key=$w/mok.key mok_certificate=$w/mok.pub
export sign_file=$ad/root/usr/lib/linux-kbuild-6.1/scripts/sign-file

first=1
((reps > 1)) && first=0
for ((i = first; i <= reps; i++)); do
	t=$w/tree-$i
	mkdir -p "$t/var/lib/dkms" "$t/lib/modules/$kv"
	t0=$(now_ms)
	"$@" dkms --dkmstree "$t/var/lib/dkms" --sourcetree "$w/usr/src" \
		--installtree "$t/lib/modules" --kernelsourcedir "$kdir" \
		-k "$kv" -a x86_64 --no-depmod build "$name/$version"
	ms=$(($(now_ms) - t0))
	if ((i > 0)); then
		printf 'amd64\t%s\tdkms_build\t%s.%03d\ts\n' "$kv" $((ms / 1000)) $((ms % 1000)) >>"$out"
	fi
	echo "dkms build $i: ${ms} ms$( ((i)) || echo ' (untimed)')"
done
ours=$w/tree-$reps/var/lib/dkms/$name/$version/$kv/x86_64/module/vfio.ko
[ -f "$ours" ] || ours=$(find "$w/tree-$reps/var/lib/dkms" -name 'vfio.ko*' | head -n 1)
"$here/ko-size.sh" amd64 "$kv" "$ours" "$ad/root/lib/modules/$kv/kernel/drivers/vfio/vfio.ko" "$out"
