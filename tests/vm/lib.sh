# shellcheck shell=bash
# Common helpers for the vfio-core test harness. Sourced, never run.

VFIO_CORE_CACHE=${VFIO_CORE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-core}
export VFIO_CORE_CACHE

die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

log() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# deb_arch ARCH: the Debian architecture name for a harness arch.
deb_arch() {
	case "$1" in
	amd64 | x86_64) echo amd64 ;;
	s390x | s390) echo s390x ;;
	*) die "unknown arch '$1' (amd64 or s390x)" ;;
	esac
}

# current_abi ARCH: the ABI (e.g. 6.1.0-57) the linux-image-ARCH metapackage
# of bookworm depends on today.
current_abi() {
	local arch pkg
	arch=$(deb_arch "$1")
	pkg=$(apt-cache depends "linux-image-$arch:$arch" 2>/dev/null |
		sed -n "s/^ *Depends: linux-image-\(6\.1\.0-[0-9]*\)-$arch\(-unsigned\)\?\(:$arch\)\?\$/\1/p" |
		sort -V | tail -n 1)
	[ -n "$pkg" ] || die "cannot resolve linux-image-$arch to a 6.1 ABI (apt-get update? dpkg --add-architecture $arch?)"
	echo "$pkg"
}

# all_abis ARCH: every 6.1 ABI of ARCH whose headers the mirror offers (some
# ABIs' images stay in the mirror after their headers have gone).
all_abis() {
	local arch
	arch=$(deb_arch "$1")
	apt-cache search --names-only "^linux-headers-6\\.1\\.0-[0-9]+-$arch\$" 2>/dev/null |
		sed -n "s/^linux-headers-\(6\.1\.0-[0-9]*\)-$arch .*/\1/p" | sort -uV
}

# abi_dir ARCH ABI: where fetch.sh unpacks that kernel.
abi_dir() {
	echo "$VFIO_CORE_CACHE/kernels/$(deb_arch "$1")/$2"
}

# kver ARCH ABI: the kernel release string (uname -r in the guest).
kver() {
	echo "$2-$(deb_arch "$1")"
}
