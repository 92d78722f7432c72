#!/bin/bash
# image.sh PREV_ABI CUR_ABI - the Debian 12 system of the end-to-end test
#
# A bookworm root file system built from the machine's own apt sources with
# mmdebstrap, as a raw ext4 disk image (mkfs.ext4 -d, no loop mounts):
# systemd, dkms, the build tools and openssl (DKMS makes its signing key
# with it), the kernel and headers of PREV_ABI
# installed, and the image, headers and kbuild .debs of CUR_ABI in
# /var/cache/vfio-core-e2e/ to upgrade to.  The edu PCI device (1234:11e8)
# is bound to vfio-pci from the initramfs (/etc/initramfs-tools/modules
# plus "options vfio-pci ids=").  At boot, e2e.service mounts the disk
# labelled E2EPAYLOAD and runs its guest.sh (tests/e2e/run.sh provides it).
#
# The first boots use the kernel and initramfs of PREV_ABI that the image's
# own update-initramfs made, copied next to the image (vmlinuz-KVER,
# initrd.img-KVER).
#
# Cached in $VFIO_CORE_CACHE/e2e/image-KEY/root.raw, KEY a hash of this
# script, the apt sources and the versions apt resolves for the kernel
# packages: a new kernel build or a change here builds a new image.  Prints
# the image path.  Serialized by a lock; safe to run concurrently.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/../vm/lib.sh"

[ $# -eq 2 ] || die "usage: image.sh PREV_ABI CUR_ABI"
prev=$1 cur=$2
for a in "$prev" "$cur"; do
	[[ $a =~ ^6\.1\.0-[0-9]+$ ]] || die "'$a' is not a 6.1 ABI (like 6.1.0-57)"
done

# The host's apt sources, as files mmdebstrap pastes into the image.
mapfile -t sources < <(
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && grep -Eq '^[[:space:]]*(deb |Types:)' "$f" && echo "$f"
	done
)
[ ${#sources[@]} -gt 0 ] || die "no apt sources in /etc/apt"

cur_debs=("linux-image-$cur-amd64" "linux-headers-$cur-amd64" "linux-headers-$cur-common")
names=("linux-image-$prev-amd64" "linux-headers-$prev-amd64" "${cur_debs[@]}" linux-kbuild-6.1 dkms)
# The version apt installs of each, in one apt-cache call.
mapfile -t vers < <(apt-cache policy "${names[@]}" 2>/dev/null | sed -n 's/^ *Candidate: //p')
[ ${#vers[@]} = ${#names[@]} ] || die "apt does not know all of ${names[*]} (apt-get update?)"
pins=()
for i in "${!names[@]}"; do
	v=${vers[$i]:-}
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then
		die "apt has no ${names[$i]} (apt-get update?)"
	fi
	pins+=("${names[$i]}=$v")
done
key=$({
	cat "$0" "${sources[@]}"
	printf '%s\n' "${pins[@]}"
} | sha256sum | cut -c1-16)
dir=$VFIO_CORE_CACHE/e2e/image-$key
img=$dir/root.raw
if [ -f "$dir/.done" ]; then
	echo "$img"
	exit 0
fi
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -f "$dir/.done" ]; then
	echo "$img"
	exit 0
fi
command -v mmdebstrap >/dev/null || die "mmdebstrap is missing (tests/deps.sh installs it)"

log "building the e2e image $key (${pins[*]})"
tmp=$dir/tmp
rm -rf "$tmp" "$img"
mkdir -p "$tmp/debs" "$tmp/etc" "$tmp/boot"
# The newer ABI as local .debs, the way an admin gets them from a mirror.
(cd "$tmp/debs" && apt-get download -q "${pins[@]:2:3}" >/dev/null 2>&1) ||
	(cd "$tmp/debs" && apt-get download "${pins[@]:2:3}") ||
	die "cannot download ${cur_debs[*]}"

cat >"$tmp/etc/e2e.service" <<'UNIT'
[Unit]
Description=vfio-core end-to-end test, one phase per boot
After=multi-user.target
ConditionPathExists=/dev/disk/by-label/E2EPAYLOAD

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /e2e && mount -o ro LABEL=E2EPAYLOAD /e2e && exec /e2e/guest.sh'
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT

{
	printf 'E2E_TMP=%q\n' "$tmp"
	# The edu device goes to vfio-pci from the initramfs, as an admin
	# who passes a device through sets it up.
	cat <<'HOOK'
set -e
r=$1
echo vfio-e2e >"$r/etc/hostname"
echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$r/etc/fstab"
printf '%s\n' vfio vfio_iommu_type1 vfio_pci >>"$r/etc/initramfs-tools/modules"
echo 'options vfio-pci ids=1234:11e8' >"$r/etc/modprobe.d/vfio-pci-e2e.conf"
cp "$E2E_TMP/etc/e2e.service" "$r/etc/systemd/system/e2e.service"
chroot "$r" systemctl enable e2e.service
# Nothing else runs while a phase does.
for u in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer \
	fstrim.timer e2scrub_reap.service systemd-timesyncd.service getty@tty1.service \
	serial-getty@ttyS0.service serial-getty@ttyS1.service; do
	chroot "$r" systemctl mask "$u" >/dev/null 2>&1 || true
done
mkdir -p "$r/var/cache/vfio-core-e2e"
cp "$E2E_TMP"/debs/*.deb "$r/var/cache/vfio-core-e2e/"
chroot "$r" systemd-machine-id-setup
chroot "$r" update-initramfs -u -k all
cp "$r"/boot/vmlinuz-* "$r"/boot/initrd.img-* "$E2E_TMP/boot/"
# dpkg without an fsync per file (as Debian's container images have it):
# TCG makes each one costly, and no test here is about a power cut.
echo force-unsafe-io >"$r/etc/dpkg/dpkg.cfg.d/vfio-core-e2e"
# From the first boot on, initramfs-tools' documented smaller initramfs:
# only the modules this machine needs (the ones in
# /etc/initramfs-tools/modules always).  With MODULES=most, each
# update-initramfs takes minutes under TCG; the refresh logic under test
# is the same.  (In the chroot above "dep" would detect the build host.)
# And zstd's level 1 instead of its default 9 (initramfs.conf(5)
# COMPRESSLEVEL): under TCG, compressing takes about 15 s at level 9 and 1 s
# at level 1, and the test generates six initramfs images.
printf '%s\n' MODULES=dep COMPRESSLEVEL=1 >"$r/etc/initramfs-tools/conf.d/vfio-core-e2e.conf"
HOOK
} >"$tmp/customize.sh"

mmdebstrap --variant=apt --mode=root \
	--include="systemd,systemd-sysv,udev,kmod,initramfs-tools,zstd,dkms,build-essential,openssl,jq,procps,psmisc,pciutils,e2fsprogs,${pins[0]},${pins[1]},${pins[5]}" \
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
	--skip=cleanup/apt/lists \
	--customize-hook="sh $tmp/customize.sh \"\$1\"" \
	bookworm "$tmp/root" "${sources[@]}" >&2 ||
	die "mmdebstrap failed"
# 6 GiB, sparse: the kernels, two sets of headers and the build tools take
# about 2 GiB; the rest is room for two more kernels and their initramfs.
mkfs.ext4 -q -F -L e2eroot -d "$tmp/root" "$img" 6G >&2 || die "mkfs.ext4 -d failed"
printf '%s\n' "${pins[@]}" >"$dir/manifest"
mv "$tmp"/boot/* "$dir/"
rm -rf "$tmp"
touch "$dir/.done"
# Older images (other inputs) that no run is building now go.
for d in "$VFIO_CORE_CACHE"/e2e/image-*; do
	if [ "$d" = "$dir" ] || [ ! -d "$d" ]; then
		continue
	fi
	(flock -n 8 && rm -rf "$d") 8>"$d/.lock" || true
done
echo "$img"
