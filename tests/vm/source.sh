#!/bin/bash
# source.sh [--full] VERSION|current - the parts of Debian's linux-source-6.1 the project uses
#
# Downloads linux-source-6.1=VERSION (a Debian version like 6.1.192-3, or
# "current": the version of the current amd64 ABI's kernel, $KABI if set) with
# apt-get download into $VFIO_CORE_CACHE/dl and extracts only what the tests
# need into $VFIO_CORE_CACHE/src/VERSION/linux-source-6.1:
#   drivers/vfio, drivers/s390/cio, drivers/s390/crypto, virt/kvm/vfio.[ch],
#   virt/lib (irqbypass), include/linux/vfio*.h, include/uapi/linux/vfio*.h,
#   the s390 Kconfig files that gate the vfio drivers, samples/vfio-mdev and
#   checkpatch.pl with its data files.
# With --full, the whole tree instead, into
# $VFIO_CORE_CACHE/src/VERSION/full/linux-source-6.1 (for building a kernel:
# tests/vm/debug-kernel.sh); the partial extraction above is unaffected.
# Nothing is installed into the machine. Idempotent (a .done marker; safe to
# run concurrently, serialized by a lock). Prints the source directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

full=0
if [ "${1:-}" = --full ]; then
	full=1
	shift
fi
[ $# -eq 1 ] || die "usage: source.sh [--full] VERSION|current (a Debian version like 6.1.192-3)"
ver=$1
if [ "$ver" = current ]; then
	abi=${KABI:-$(current_abi amd64)}
	ver=$(cat "$(abi_dir amd64 "$abi")/version" 2>/dev/null ||
		apt-cache show "linux-image-$abi-amd64-unsigned" | sed -n 's/^Version: //p' | sort -V | tail -n 1)
	[ -n "$ver" ] || die "cannot tell the Debian version of ABI $abi"
fi
[[ $ver =~ ^6\.1\.[0-9]+-[0-9]+[a-z0-9.+~]*$ ]] ||
	die "'$ver' is not a Debian linux 6.1 version (like 6.1.192-3)"

base=$VFIO_CORE_CACHE/src/$ver
dir=$base/linux-source-6.1
done=$base/.done
tmp=$base/tmp
if [ "$full" = 1 ]; then
	dir=$base/full/linux-source-6.1
	done=$base/.done-full
	tmp=$base/tmp-full
fi
dl=$VFIO_CORE_CACHE/dl
deb=$dl/linux-source-6.1_${ver}_all.deb

if [ -f "$done" ]; then
	echo "$dir"
	exit 0
fi

mkdir -p "$base" "$dl"
exec 9>"$base/.lock"
flock 9
# Another run may have finished while we waited for the lock.
if [ -f "$done" ]; then
	echo "$dir"
	exit 0
fi

if [ ! -s "$deb" ]; then
	log "downloading linux-source-6.1 $ver"
	(
		cd "$dl"
		apt-get download -q "linux-source-6.1=$ver" >/dev/null 2>&1 ||
			apt-get download "linux-source-6.1=$ver"
	) || die "cannot download linux-source-6.1=$ver (apt-get update?)"
	[ -s "$deb" ] || die "apt-get download did not produce $deb"
fi

paths=(
	drivers/vfio
	drivers/s390/cio
	drivers/s390/crypto
	'include/linux/vfio*.h'
	'include/uapi/linux/vfio*.h'
	virt/kvm/vfio.c
	virt/kvm/vfio.h
	virt/lib
	arch/s390/Kconfig
	drivers/iommu/Kconfig
	samples/vfio-mdev
	scripts/checkpatch.pl
	scripts/spelling.txt
	scripts/const_structs.checkpatch
)

members=("${paths[@]/#/linux-source-6.1/}")
what=
if [ "$full" = 1 ]; then
	members=(linux-source-6.1)
	what=" (the whole tree)"
fi

log "extracting linux-source-6.1 $ver$what"
rm -rf "$tmp" "$dir"
mkdir -p "$tmp" "${dir%/*}"
# The .deb holds /usr/src/linux-source-6.1.tar.xz; stream it straight into
# tar so the tarball never lands on disk.
dpkg-deb --fsys-tarfile "$deb" |
	tar -xO ./usr/src/linux-source-6.1.tar.xz |
	tar -xJ -C "$tmp" --wildcards "${members[@]}" ||
	die "cannot extract the sources from $deb"
mv "$tmp/linux-source-6.1" "$dir"
rmdir "$tmp"
touch "$done"
echo "$dir"
