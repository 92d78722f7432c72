#!/bin/bash
# fetch.sh [--headers-only] ARCH [ABI] - download and unpack a stock Debian 6.1 kernel
#
# Unpacks linux-headers-ABI-ARCH, linux-headers-ABI-common, the host's
# linux-kbuild-6.1 and (unless --headers-only) linux-image-ABI-ARCH-unsigned
# with apt-get download + dpkg -x into $VFIO_CORE_CACHE/kernels/ARCH/ABI/root;
# nothing is installed into the machine. The headers' absolute paths are
# rewritten to point into that tree, and for amd64 an uncompressed vmlinux is
# extracted (TCG boots it much faster than the bzImage). Prints the ABI dir:
#   root/lib/modules/KVER/build   kernel build directory (KDIR)
#   root/lib/modules/KVER/kernel  the stock modules
#   root/boot/vmlinuz-KVER        the stock image
#   vmlinux                       amd64 only: the uncompressed image
#   version                       the Debian package version
# ABI defaults to the one the linux-image-ARCH metapackage depends on today.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

want_image=1
if [ "${1:-}" = --headers-only ]; then
	want_image=0
	shift
fi
[ $# -ge 1 ] || die "usage: fetch.sh [--headers-only] amd64|s390x [ABI]"
arch=$(deb_arch "$1")
abi=${2:-$(current_abi "$arch")}
[[ $abi =~ ^6\.1\.0-[0-9]+$ ]] || die "'$abi' is not a 6.1 ABI (like 6.1.0-57)"
dir=$(abi_dir "$arch" "$abi")
root=$dir/root
kv=$abi-$arch

# extract_vmlinux BZIMAGE OUT: the first xz stream in BZIMAGE that
# decompresses to an ELF image (Debian compresses amd64 kernels with xz).
extract_vmlinux() {
	local off
	export LC_ALL=C
	while read -r off; do
		tail -c "+$((off + 1))" "$1" | xz -dc 2>/dev/null >"$2.tmp" || true
		if [ "$(head -c 4 "$2.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			mv "$2.tmp" "$2"
			return 0
		fi
	done < <(grep -abo $'\xfd7zXZ' "$1" | cut -d: -f1)
	rm -f "$2.tmp"
	return 1
}

# unpack PKG...: apt-get download the packages and dpkg -x them into $root.
unpack() {
	local tmp deb
	tmp=$(mktemp -d "$dir/deb.XXXXXX")
	(cd "$tmp" && apt-get download -q "$@" >/dev/null 2>&1) ||
		(cd "$tmp" && apt-get download "$@") ||
		die "apt-get download $* failed"
	for deb in "$tmp"/*.deb; do
		dpkg -x "$deb" "$root"
	done
	rm -rf "$tmp"
}

mkdir -p "$dir"
# Only amd64 has signed kernels, hence -unsigned image packages.
img=linux-image-$kv
[ "$arch" != amd64 ] || img=$img-unsigned
ver=$(apt-cache show "linux-headers-$kv:$arch" 2>/dev/null |
	sed -n 's/^Version: //p' | sort -V | tail -n 1) || true
[ -n "$ver" ] || die "the mirror has no linux-headers-$kv (see: all_abis $arch)"

if [ ! -f "$dir/.headers" ]; then
	rm -rf "$root"
	mkdir -p "$root"
	# The headers depend on linux-kbuild-6.1 (>= their version); the
	# mirror keeps only the newest kbuild builds, so take the exact one if
	# it is still there, else the newest (the same 6.1 host tools).
	kbuild_vers=$(apt-cache madison linux-kbuild-6.1 | awk '{ print $3 }' | sort -V)
	kbuild_ver=$(echo "$kbuild_vers" | tail -n 1)
	if echo "$kbuild_vers" | grep -qxF "$ver"; then
		kbuild_ver=$ver
	fi
	dpkg --compare-versions "$kbuild_ver" ge "$ver" ||
		die "the mirror has no linux-kbuild-6.1 >= $ver"
	log "fetching headers $kv $ver (kbuild $kbuild_ver)"
	unpack "linux-headers-$kv:$arch=$ver" "linux-headers-$abi-common=$ver" \
		"linux-kbuild-6.1=$kbuild_ver"
	# Point the headers at this tree instead of /usr/src and /usr/lib.
	sed -i "s|/usr/src/|$root/usr/src/|g" "$root/usr/src/linux-headers-$kv/Makefile"
	mkdir -p "$root/lib/modules/$kv"
	ln -sfn "$root/usr/src/linux-headers-$kv" "$root/lib/modules/$kv/build"
	ln -sfn "$root/usr/src/linux-headers-$abi-common" "$root/lib/modules/$kv/source"
	echo "$ver" >"$dir/version"
	touch "$dir/.headers"
fi

if [ "$want_image" = 1 ] && [ ! -f "$dir/.image" ]; then
	log "fetching image $kv $ver"
	unpack "$img:$arch=$ver"
	if [ "$arch" = amd64 ]; then
		extract_vmlinux "$root/boot/vmlinuz-$kv" "$dir/vmlinux" ||
			die "cannot extract vmlinux from vmlinuz-$kv"
	fi
	touch "$dir/.image"
fi
echo "$dir"
