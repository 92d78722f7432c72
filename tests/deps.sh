#!/bin/bash
# deps.sh: install (apt) what `make check` needs and a fresh Debian 12
# machine lacks. Needs root only when something is missing.
set -euo pipefail

pkgs=(
	make gcc bc bison flex cpio kmod xz-utils zstd lz4 file perl
	libelf-dev libssl-dev
	qemu-system-x86 qemu-system-misc qemu-utils
	gcc-s390x-linux-gnu gcc-12-s390x-linux-gnu libc6-dev-s390x-cross
	busybox-static dash bash-static binutils dkms shellcheck jq
	debhelper dh-dkms lintian mmdebstrap e2fsprogs
	python3 gnuplot-nox
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
		missing+=("$p")
done
# s390x guest userspace (busybox, kmod) and kernels come from the s390x
# architecture of the same mirror.
need_s390x=0
dpkg --print-foreign-architectures | grep -qx s390x || need_s390x=1

if [ ${#missing[@]} -eq 0 ] && [ $need_s390x = 0 ]; then
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing ${missing[*]}${need_s390x:+ (and the s390x dpkg architecture)}; run as root" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if [ $need_s390x = 1 ]; then
	echo "deps.sh: dpkg --add-architecture s390x" >&2
	dpkg --add-architecture s390x
fi
apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps.sh: installing ${missing[*]}" >&2
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
