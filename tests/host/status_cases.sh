# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-swap status --json on a fake root with three kernels: which vfio is
# loaded, which one modprobe resolves for each kernel, what each initramfs
# carries (real cpio archives, zstd, with an early microcode archive in
# front, listed by Debian's own lsinitramfs), and what the next boot loads.
# Sourced by rebind_test.sh.

K2=6.1.0-58-amd64
K3=6.1.0-56-amd64

# lsinitramfs_dir: a directory with Debian's lsinitramfs and unmkinitramfs:
# the installed ones, else initramfs-tools-core unpacked (apt-get download,
# dpkg -x, as the harness fetches kernels) into the cache
lsinitramfs_dir() {
	local cache=${VFIO_CORE_CACHE:-$HOME/.cache/vfio-core}/tools/initramfs-tools-core tmp
	if command -v lsinitramfs >/dev/null && command -v unmkinitramfs >/dev/null; then
		dirname "$(command -v lsinitramfs)"
		return 0
	fi
	if [[ ! -x $cache/usr/bin/lsinitramfs ]]; then
		mkdir -p "${cache%/*}"
		tmp=$(mktemp -d "${cache%/*}/.initramfs-tools-core.XXXXXX")
		(cd "$tmp" && apt-get download -q initramfs-tools-core >/dev/null 2>&1 &&
			dpkg -x initramfs-tools-core_*.deb x) || {
			rm -rf "$tmp"
			return 1
		}
		mv -T "$tmp/x" "$cache" 2>/dev/null || true
		rm -rf "$tmp"
	fi
	[[ -x $cache/usr/bin/lsinitramfs ]] && echo "$cache/usr/bin"
}

# other_ko KVER PATH NAME VERSION SRCVERSION: a fake module of kernel KVER
other_ko() {
	mkdir -p "$ROOT/lib/modules/$1/${2%/*}"
	printf 'name=%s\nversion=%s\nsrcversion=%s\ndepends=\n' "$3" "$4" "$5" \
		>"$ROOT/lib/modules/$1/$2"
}

# initrd KVER PATH...: $ROOT/boot/initrd.img-KVER as Debian builds it: an
# uncompressed early archive (CPU microcode), then a zstd-compressed one
# with PATHs (relative to usr/lib/modules/KVER) and a few usual files
initrd() {
	local k=$1 d p
	shift
	d=$(mktemp -d "$WORK/initrd.XXXXXX")
	mkdir -p "$d/early/kernel/x86/microcode" "$d/main/usr/lib/modules/$k/kernel/drivers/net" \
		"$d/main/usr/bin" "$d/main/scripts"
	echo microcode >"$d/early/kernel/x86/microcode/GenuineIntel.bin"
	echo '#!/bin/sh' >"$d/main/init"
	: >"$d/main/usr/lib/modules/$k/kernel/drivers/net/e1000e.ko"
	for p in "$@"; do
		mkdir -p "$d/main/usr/lib/modules/$k/${p%/*}"
		echo vfio >"$d/main/usr/lib/modules/$k/$p"
	done
	mkdir -p "$ROOT/boot"
	{
		(cd "$d/early" && find . | sort | cpio -o -H newc --quiet)
		(cd "$d/main" && find . | sort | cpio -o -H newc --quiet | zstd -q -c)
	} >"$ROOT/boot/initrd.img-$k"
	rm -rf "$d"
}

LSI_DIR=''
c_status_kernels() {
	local st=0
	make_host "$WORK/h5"
	if ! LSI_DIR=$(lsinitramfs_dir); then
		fail "no lsinitramfs: neither installed nor downloadable (apt-get download initramfs-tools-core)"
		return 0
	fi
	export LSINITRAMFS=$LSI_DIR/lsinitramfs
	# the running kernel: vfio-core installed, but its initramfs was built
	# before (DKMS 3.0.10 does not refresh it): stock at the next boot of it
	initrd "$KREL" kernel/drivers/vfio/vfio.ko kernel/drivers/vfio/pci/vfio-pci.ko
	# a newer kernel: vfio-core built by DKMS, initramfs refreshed
	other_ko "$K2" kernel/drivers/vfio/vfio.ko vfio 0.3 STOCK58
	other_ko "$K2" updates/dkms/vfio.ko vfio 1.0 OURS58
	initrd "$K2" updates/dkms/vfio.ko kernel/drivers/vfio/pci/vfio-pci.ko
	# an older kernel: stock only, an initramfs without vfio
	other_ko "$K3" kernel/drivers/vfio/vfio.ko vfio 0.3 STOCK56
	initrd "$K3"
	echo vmlinuz >"$ROOT/boot/vmlinuz-$K2"
	ln -s "boot/vmlinuz-$K2" "$ROOT/vmlinuz"
	PATH=$LSI_DIR:$PATH run stk "$SWAP" status --json
	[[ $RC == 0 ]] || st=1
	echo "$OUT" >"$WORK/status-kernels.json"
	jq -e --arg k1 "$KREL" --arg k2 "$K2" --arg k3 "$K3" --arg m "$ROOT/lib/modules" '
		(.kernels | map({key: .kernel, value: .}) | from_entries) as $k |
		(.kernels | length) == 3 and
		.vfio.flavour == "stock" and .ours_installed == true and
		.loaded_is_installed == false and
		$k[$k1].running == true and $k[$k1].flavour == "vfio-core" and
		$k[$k1].modprobe_file == "\($m)/\($k1)/updates/dkms/vfio.ko" and
		$k[$k1].initramfs.vfio == "carries" and
		$k[$k1].initramfs.vfio_file == "usr/lib/modules/\($k1)/kernel/drivers/vfio/vfio.ko" and
		$k[$k1].initramfs.flavour == "stock" and $k[$k1].boot_flavour == "stock" and
		$k[$k2].running == false and $k[$k2].flavour == "vfio-core" and
		$k[$k2].version == "1.0" and $k[$k2].srcversion == "OURS58" and
		$k[$k2].initramfs.flavour == "vfio-core" and $k[$k2].boot_flavour == "vfio-core" and
		$k[$k3].flavour == "stock" and $k[$k3].initramfs.vfio == "without" and
		$k[$k3].boot_flavour == "stock" and
		.next_boot == {kernel: $k2, chosen_by: "/vmlinuz", flavour: "vfio-core"}' \
		"$WORK/status-kernels.json" >/dev/null || st=1
	verdict "$st" "rc=$RC" "$ERR" "$OUT"
}
tcase c_status_kernels "status --json, three kernels: modprobe's vfio for each, what each initramfs carries (Debian's lsinitramfs on zstd + early cpio), the next boot by /vmlinuz; stock running with vfio-core installed is visible (loaded_is_installed false)"

c_status_next_newest() {
	local st=0
	rm -f "$ROOT/vmlinuz"
	rm -f "$ROOT/boot/initrd.img-$K2"
	PATH=$LSI_DIR:$PATH run stn "$SWAP" status --json
	jq -e --arg k2 "$K2" '.next_boot == {kernel: $k2, chosen_by: "newest", flavour: "vfio-core"} and
		(.kernels[] | select(.kernel == $k2) | .initramfs.vfio == "none")' <<<"$OUT" >/dev/null || st=1
	initrd "$K2" kernel/drivers/vfio/vfio.ko
	PATH=$LSI_DIR:$PATH run stn2 "$SWAP" status
	grep -q "^next boot: *$K2 (newest): stock" <<<"$OUT" || st=1
	verdict "$st" "$OUT"
}
tcase c_status_next_newest "status: without /vmlinuz the next boot is the newest kernel; no initramfs means modprobe's choice, a stale one means stock (text and JSON)"

c_status_after_swap() {
	local st=0
	run sw "$SWAP" to-ours
	[[ $RC == 0 ]] || st=1
	PATH=$LSI_DIR:$PATH run sta "$SWAP" status --json
	jq -e '.vfio.flavour == "vfio-core" and .loaded_is_installed == true and
		.deadlock_affected == false' <<<"$OUT" >/dev/null || st=1
	LSINITRAMFS=$ROOT/bin/none run stu "$SWAP" status --json
	jq -e '.kernels | all(.initramfs.vfio == "unknown" and .boot_flavour == "unknown")' \
		<<<"$OUT" >/dev/null || st=1
	verdict "$st" "$ERR" "$OUT"
}
tcase c_status_after_swap "status --json after to-ours: vfio-core loaded and installed; without lsinitramfs the initramfs contents are reported unknown, not guessed"
