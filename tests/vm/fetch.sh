#!/bin/bash
# fetch.sh ARCH [ABI] - download and unpack a stock Debian 6.1 kernel
#
# Unpacks linux-image-ABI-ARCH-unsigned, linux-headers-ABI-ARCH,
# linux-headers-ABI-common and the linux-kbuild-6.1 of the same version with
# apt-get download + dpkg -x into $VFIO_CORE_CACHE/kernels/ARCH/ABI/root;
# nothing is installed into the machine. The headers' absolute paths are
# rewritten to point into that tree, and an uncompressed vmlinux is extracted
# for amd64 (TCG boots it much faster than the bzImage). Prints the tree.
# ABI defaults to the one the linux-image-ARCH metapackage depends on.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

[ $# -ge 1 ] || die "usage: fetch.sh amd64|s390x [ABI]"
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
	for off in $(grep -abo $'\xfd7zXZ' "$1" | cut -d: -f1); do
		tail -c "+$((off + 1))" "$1" | xz -dc 2>/dev/null >"$2.tmp" || true
		if [ "$(head -c 4 "$2.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
			mv "$2.tmp" "$2"
			return 0
		fi
	done
	rm -f "$2.tmp"
	return 1
}

if [ -f "$dir/.done" ]; then
	echo "$dir"
	exit 0
fi

rm -rf "$dir"
mkdir -p "$dir/deb" "$root"
img=linux-image-$kv-unsigned
hdr=linux-headers-$kv
common=linux-headers-$abi-common
ver=$(apt-cache show "$img:$arch" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
[ -n "$ver" ] || die "the mirror has no $img (try: all ABIs: tests/vm/fetch.sh --list)"
log "fetching $img $ver"
(
	cd "$dir/deb"
	# The host's kbuild (host tools) of the same version, the target's
	# image and arch headers, and the arch-independent common headers.
	apt-get download -q "$img:$arch=$ver" "$hdr:$arch=$ver" \
		"$common=$ver" "linux-kbuild-6.1=$ver" >/dev/null 2>&1 ||
		apt-get download "$img:$arch=$ver" "$hdr:$arch=$ver" \
			"$common=$ver" "linux-kbuild-6.1=$ver"
)
for deb in "$dir"/deb/*.deb; do
	dpkg -x "$deb" "$root"
done

# Point the headers at this tree instead of /usr/src and /usr/lib.
sed -i "s|/usr/src/|$root/usr/src/|g" "$root/usr/src/linux-headers-$kv/Makefile"
ln -sfn "$root/usr/src/linux-headers-$kv" "$root/lib/modules/$kv/build"
ln -sfn "$root/usr/src/linux-headers-$abi-common" "$root/lib/modules/$kv/source"

if [ "$arch" = amd64 ]; then
	extract_vmlinux "$root/boot/vmlinuz-$kv" "$dir/vmlinux" ||
		die "cannot extract vmlinux from vmlinuz-$kv"
fi
echo "$ver" >"$dir/version"
rm -rf "$dir/deb"
touch "$dir/.done"
echo "$dir"
