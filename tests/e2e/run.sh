#!/bin/bash
# run.sh [--deb FILE] [--logdir DIR] - the end-to-end test on a real Debian 12
# system (TAP 14 on stdout: 8 steps, each a subtest; non-zero exit on a
# failure)
#
# The system (tests/e2e/image.sh, cached): bookworm from the machine's apt
# sources, systemd, dkms and the build tools, the kernel and headers of the
# previous amd64 ABI installed, the current ABI's image and headers as local
# .debs, the edu device bound to vfio-pci from the initramfs.  Each run
# starts from a copy of that disk and boots it in QEMU (TCG, q35,
# intel-iommu with interrupt remapping, -cpu max, edu) with the kernel and
# the initramfs that the guest itself installed and generated: both are read
# out of the guest's disk (debugfs, from e2fsprogs: no loop mount, no
# bootloader to install) before each boot, so every boot runs exactly what
# the guest's dpkg, DKMS and initramfs-tools left in /boot.  The guest
# drives itself (tests/e2e/guest.sh, run by a systemd unit from a second,
# read-only disk with the package under test), writes TAP to its second
# serial port, records what to boot next and powers off; this script boots
# it again until it says it is done.  The steps:
#   1. apt install ./vfio-core-dkms_*.deb builds and installs ours (with a
#      VM's process holding the device: the switch waits for the next boot)
#   2. after a reboot ours is loaded from the initramfs, edu on vfio-pci
#   3. the upgrade to the current ABI builds ours by the kernel hook, headers
#      configured before and after the image, and its initramfs carries ours
#   4. after a reboot into it ours is loaded and the device opens
#   5. apt purge gives the stock vfio back (live, and after a reboot, which
#      boots with module.sig_enforce=1 for step 6 on)
#   6. module.sig_enforce=1, DKMS key untrusted: installing keeps stock
#   7. a doctored Module.symvers trips the ABI guard
#   8. a doctored changelog trips the drift guard
#
# --deb FILE: the package to test (default: make deb).  Logs: --logdir (default
# build/logs/e2e): each boot's console and TAP, the guest's command logs.
# E2E_BOOT_TIMEOUT: seconds per boot (default 900).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/../vm/harness.sh"

deb=
logdir=$repo_dir/build/logs/e2e
while [ $# -gt 0 ]; do
	case "$1" in
	--deb) deb=$2; shift 2 ;;
	--logdir) logdir=$2; shift 2 ;;
	*) die "usage: run.sh [--deb FILE] [--logdir DIR]" ;;
	esac
done
boot_timeout=${E2E_BOOT_TIMEOUT:-900}
t_start=$(now_ms)

# The current ABI, and the newest older one whose image and headers the
# mirror still has.
cur=$(current_abi amd64)
prev=
for a in $(all_abis amd64 | sort -rV); do
	dpkg --compare-versions "${a#6.1.0-}" lt "${cur#6.1.0-}" || continue
	if apt-cache show "linux-image-$a-amd64" >/dev/null 2>&1; then
		prev=$a
		break
	fi
done
[ -n "$prev" ] || die "the mirror has no amd64 ABI older than $cur with image and headers"

echo "TAP version 14"
echo "1..8"
echo "# previous ABI $prev, current ABI $cur"

mkdir -p "$logdir"
rm -rf "${logdir:?}"/*
work=$repo_dir/build/e2e
mkdir -p "$work"

if [ -z "$deb" ]; then
	make -C "$repo_dir" deb >"$logdir/make-deb.log" 2>&1 ||
		{ echo "Bail out! make deb failed (see $logdir/make-deb.log)"; exit 1; }
	deb=$(sed -n 's/^deb: //p' "$logdir/make-deb.log")
	deb=$repo_dir/$deb
fi
[ -f "$deb" ] || { echo "Bail out! no package $deb"; exit 1; }

t0=$(now_ms)
if ! image=$("$here/image.sh" "$prev" "$cur" 2>"$logdir/image.log" | tail -n 1) || [ ! -f "$image" ]; then
	echo "Bail out! the test system could not be built (see $logdir/image.log)"
	exit 1
fi
echo "# image: $image ($(fmt_ms $(($(now_ms) - t0))))"

# The payload disk: the guest script, the package, the test program.
pl=$work/payload
rm -rf "$pl" "$work/payload.img"
mkdir -p "$pl"
install -m 0755 "$here/guest.sh" "$pl/guest.sh"
cp "$deb" "$repo_dir/dkms.conf" "$pl/"
gcc -Wall -Wextra -Werror -O2 -static -o "$pl/pci_open" "$repo_dir/tests/guest/pci_open.c"
printf 'PREV=%s\nCUR=%s\nDEB=%s\n' "$(kver amd64 "$prev")" "$(kver amd64 "$cur")" "${deb##*/}" >"$pl/config"
mkfs.ext4 -q -F -L E2EPAYLOAD -d "$pl" "$work/payload.img" 64M >/dev/null

disk=$work/root.raw
cp --sparse=always "$image" "$disk"

# guest_file PATH OUT: a file of the guest's disk (nothing when missing).
guest_file() {
	rm -f "$2"
	debugfs -R "dump -p $1 $2" "$disk" >/dev/null 2>&1 || true
	[ -s "$2" ]
}

steps_seen=0
phase=0
kernel=$(kver amd64 "$prev")
extra=
declare -a timings=()
while :; do
	phase=$((phase + 1))
	b=$logdir/boot$phase
	mkdir -p "$b"
	if ! guest_file "/boot/vmlinuz-$kernel" "$b/vmlinuz" ||
		! guest_file "/boot/initrd.img-$kernel" "$b/initrd.img"; then
		echo "# boot $phase: the guest's disk has no /boot/vmlinuz-$kernel or initrd.img-$kernel"
		break
	fi
	cmdline="root=/dev/vda rw console=ttyS0 intel_iommu=on no_timer_check panic=-1 $extra"
	qemu=(qemu-system-x86_64 -accel tcg -cpu max -M q35 -m 2G -smp 2
		-device "intel-iommu,intremap=on" -device edu
		-drive "file=$disk,format=raw,if=virtio,cache=unsafe"
		-drive "file=$work/payload.img,format=raw,if=virtio,readonly=on"
		-serial "file:$b/console.log" -serial "file:$b/tap.log"
		-nodefaults -display none -monitor none -no-reboot
		-kernel "$b/vmlinuz" -initrd "$b/initrd.img" -append "$cmdline")
	printf '%q ' "${qemu[@]}" >"$b/qemu.cmd"
	echo "# boot $phase: $kernel${extra:+ ($extra)}"
	t0=$(now_ms)
	rc=0
	timeout -k 5 "$boot_timeout" "${qemu[@]}" >"$b/qemu.out" 2>&1 || rc=$?
	wall=$(($(now_ms) - t0))
	timings+=("boot $phase $(fmt_ms "$wall")")
	touch "$b/tap.log"
	sed -i 's/\r$//' "$b/tap.log" "$b/console.log"
	cat "$b/tap.log"
	steps_seen=$(cat "$logdir"/boot*/tap.log | grep -cE '^(not )?ok [0-9]+ ' || true)
	echo "# boot $phase took $(fmt_ms "$wall")$([ "$rc" = 0 ] || echo ", QEMU status $rc")"
	if ! grep -q "^# phase .* done; next boot" "$b/tap.log"; then
		echo "# boot $phase did not finish its phase$([ "$rc" = 124 ] && echo " within ${boot_timeout}s (hang)"); console tail:"
		tail -n 40 "$b/console.log" | sed 's/^/#   | /'
		break
	fi
	next=$(sed -n 's/^# phase .* done; next boot: //p' "$b/tap.log" | tail -n 1)
	[ "$next" != 'done' ] || break
	read -r kernel extra <<<"$next"
done

# The guest's own logs (apt, dpkg, DKMS), for a failure's details.
debugfs -R "rdump /var/lib/vfio-core-e2e/logs $logdir" "$disk" >/dev/null 2>&1 || true
rm -f "$disk"

for n in $(seq $((steps_seen + 1)) 8); do
	echo "not ok $n - not reached # boot $phase did not finish (console: $b/console.log)"
done
echo "# e2e: ${timings[*]}; total $(fmt_ms $(($(now_ms) - t_start))); logs in $logdir"
! grep -qE '^not ok [0-9]+ ' "$logdir"/boot*/tap.log && [ "$steps_seen" -ge 8 ]
