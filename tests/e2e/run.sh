#!/bin/bash
# run.sh [--deb FILE] [--logdir DIR] - the end-to-end test on a real Debian 12
# system (TAP 14 on stdout: 8 steps, each a subtest; non-zero exit on a
# failure)
#
# The system (tests/e2e/image.sh, cached): bookworm from the machine's apt
# sources, systemd, dkms and the build tools, the kernel and headers of the
# previous amd64 ABI installed, the current ABI's image and headers as local
# .debs, the edu device bound to vfio-pci from the initramfs.  Each boot runs
# one phase of tests/e2e/guest.sh (a systemd unit runs it from a second,
# read-only disk with the package under test) in QEMU (TCG, q35, intel-iommu
# with interrupt remapping, -cpu max, edu) on a qcow2 overlay of the disk the
# phase before it left, so the cached image is never written and two phases
# that start from the same state run side by side:
#
#   secure  (steps 6-8, from the image) || install (step 1) -> order-a
#   (steps 2, 3) || order-b (step 3) ; order-a -> current (4, 5) -> purged (5)
#
# The first boots use the kernel and the initramfs that the image's own
# update-initramfs generated; every later boot uses the kernel and the
# initramfs that the guest left in its /boot: the guest writes them (tar) to
# a third disk before it powers off, so each boot runs exactly what dpkg,
# DKMS and initramfs-tools made.  The steps:
#   1. apt install ./vfio-core-dkms_*.deb builds and installs ours (with a
#      VM's process holding the device: the switch waits for the next boot)
#   2. after a reboot ours is loaded from the initramfs, edu on vfio-pci
#   3. the upgrade to the current ABI builds ours by the kernel hook, headers
#      configured before and after the image, and its initramfs carries ours
#   4. after a reboot into it ours is loaded and the device opens
#   5. apt purge gives the stock vfio back (live, and after a reboot)
#   6. module.sig_enforce=1, DKMS key untrusted: installing keeps stock
#   7. a doctored Module.symvers trips the ABI guard
#   8. a doctored changelog trips the drift guard
#
# --deb FILE: the package to test (default: make deb).  Logs: --logdir
# (default $E2E_LOGDIR, else build/logs/e2e): per boot its console, its guest output and the
# guest's command logs.  Environment: E2E_BOOT_TIMEOUT, seconds per boot
# (default 900); E2E_PARALLEL=0 boots one guest at a time (default: two
# where two phases can run side by side; each guest has 1 GiB, allocated
# at its start, and 2 vCPUs, 1 for a side phase beside the chain);
# E2E_WRAP, a command that each QEMU runs under (e.g. a CPU slot
# allocator; the boot's time counts from QEMU's start).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/../vm/harness.sh"

deb=
logdir=${E2E_LOGDIR:-$repo_dir/build/logs/e2e}
while [ $# -gt 0 ]; do
	case "$1" in
	--deb) deb=$2; shift 2 ;;
	--logdir) logdir=$2; shift 2 ;;
	*) die "usage: run.sh [--deb FILE] [--logdir DIR]" ;;
	esac
done
boot_timeout=${E2E_BOOT_TIMEOUT:-900}
parallel=${E2E_PARALLEL:-1}
read -r -a wrap <<<"${E2E_WRAP:-}"
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
rm -rf "$work"
mkdir -p "$work"

if [ -z "$deb" ]; then
	make -C "$repo_dir" deb >"$logdir/make-deb.log" 2>&1 ||
		{ echo "Bail out! make deb failed (see $logdir/make-deb.log)"; exit 1; }
	deb=$(sed -n 's/^deb: //p' "$logdir/make-deb.log")
	deb=$repo_dir/$deb
fi
[ -f "$deb" ] || { echo "Bail out! no package $deb"; exit 1; }

t0=$(now_ms)
if ! image=$("$here/image.sh" "$prev" "$cur" 2>"$logdir/image.log" | tail -n 1) ||
	[ ! -f "$image" ]; then
	echo "Bail out! the test system could not be built (see $logdir/image.log)"
	exit 1
fi
echo "# image: $image ($(fmt_ms $(($(now_ms) - t0))))"
# While the test runs, no image.sh run (of other inputs) deletes it.
exec 8<"$(dirname "$image")/.lock"
flock -s 8

# The payload disk: the guest script, the package, the test program.
pl=$work/payload
mkdir -p "$pl"
install -m 0755 "$here/guest.sh" "$pl/guest.sh"
cp "$deb" "$repo_dir/dkms.conf" "$pl/"
gcc -Wall -Wextra -Werror -O2 -static -o "$pl/pci_open" "$repo_dir/tests/guest/pci_open.c"
printf 'PREV=%s\nCUR=%s\nDEB=%s\n' "$(kver amd64 "$prev")" "$(kver amd64 "$cur")" "${deb##*/}" >"$pl/config"
mkfs.ext4 -q -F -L E2EPAYLOAD -d "$pl" "$work/payload.img" 64M >/dev/null

# boot PHASE KVER FROM DISK [CMDLINE]: boots DISK (a new qcow2 overlay of
# FROM's disk, or of the image for FROM "image"; or FROM's own disk, when
# DISK is "same") with the kernel and initramfs that FROM's guest exported
# (the image's /boot for FROM "image") to run PHASE; its output in
# $logdir/PHASE/.  Fails unless the guest finished its phase.
boot() {
	local ph=$1 k=$2 from=$3 disk=$4 extra=${5:-} b=$logdir/$1 src rc=0 t0 wall cmdline
	mkdir -p "$b"
	touch "$b/guest.log" "$b/console.log"
	if [ "$from" = image ]; then
		src=$(dirname "$image")
		qemu-img create -q -f qcow2 -b "$image" -F raw "$work/$disk.qcow2"
	else
		src=$logdir/$from/export/boot
		if [ "$disk" = same ]; then
			disk=$(cat "$logdir/$from/disk")
		else
			qemu-img create -q -f qcow2 -b "$work/$(cat "$logdir/$from/disk").qcow2" -F qcow2 "$work/$disk.qcow2"
		fi
	fi
	echo "$disk" >"$b/disk"
	if [ ! -s "$src/vmlinuz-$k" ] || [ ! -s "$src/initrd.img-$k" ]; then
		echo "# $ph: no vmlinuz-$k or initrd.img-$k from $from" >"$b/host.log"
		return 1
	fi
	truncate -s 0 "$work/$ph.export"
	truncate -s 256M "$work/$ph.export"
	# The disks in this order: vda the root, vdb the payload, vdc the export.
	# No transparent huge pages: the first stall below came in a huge
	# page's fault (an lsinitramfs took 136 s instead of 3).  The next run,
	# without them, stalled the same way in a 4 KiB page; -mem-prealloc is
	# what ended the stalls.  They stay off because the runs that measured
	# the test (README) had them off.
	cmdline="root=/dev/vda rw console=ttyS0 intel_iommu=on no_timer_check panic=-1 transparent_hugepage=never vfio_core_e2e=$ph $extra"
	# -mem-prealloc: the guest's RAM is allocated when QEMU starts (about
	# 3 s for 1 GiB here); in two runs without it, the current phase's
	# guest stalled for tens of seconds in clear_page_erms() (soft lockups),
	# huge pages or not; with it, no e2e boot of two whole make checks did.
	local qemu=(qemu-system-x86_64 -accel tcg -cpu max -M q35 -m 1G -mem-prealloc
		-smp "${e2e_smp:-2}"
		-device "intel-iommu,intremap=on" -device edu
		-drive "file=$work/$disk.qcow2,format=qcow2,if=none,id=root,cache=unsafe"
		-device "virtio-blk-pci,drive=root"
		-drive "file=$work/payload.img,format=raw,if=none,id=payload,readonly=on"
		-device "virtio-blk-pci,drive=payload"
		-drive "file=$work/$ph.export,format=raw,if=none,id=export,cache=unsafe"
		-device "virtio-blk-pci,drive=export,serial=e2eexport"
		-serial "file:$b/console.log" -serial "file:$b/guest.log"
		-nodefaults -display none -monitor none -no-reboot
		-kernel "$src/vmlinuz-$k" -initrd "$src/initrd.img-$k" -append "$cmdline")
	printf '%q ' "${qemu[@]}" >"$b/qemu.cmd"
	# The boot's time counts from QEMU's start (not from E2E_WRAP's).
	# shellcheck disable=SC2016 # expanded by that sh
	${wrap[@]+"${wrap[@]}"} sh -c 'date +%s%N >"$0" && exec "$@"' "$b/started" \
		timeout -k 5 "$boot_timeout" "${qemu[@]}" >"$b/qemu.out" 2>&1 || rc=$?
	t0=$(($(cat "$b/started" 2>/dev/null || date +%s%N) / 1000000))
	wall=$(($(now_ms) - t0))
	sed -i 's/\r$//' "$b/guest.log" "$b/console.log"
	mkdir -p "$b/export"
	tar -C "$b/export" -xf "$work/$ph.export" 2>/dev/null || true
	rm -f "$work/$ph.export"
	{
		echo "# boot $ph: $k${extra:+ ($extra)}, $(fmt_ms "$wall")$([ "$rc" = 0 ] || echo ", QEMU status $rc")"
		grep '^# .* s (' "$b/guest.log" | sed "s/^# /#   $ph: /" || true
	} >"$b/host.log"
	if ! grep -qx "phase $ph done" "$b/guest.log"; then
		{
			echo "# boot $ph did not finish its phase$([ "$rc" = 124 ] && echo " within ${boot_timeout}s (hang)"); console tail:"
			tail -n 40 "$b/console.log" | sed 's/^/#   | /'
		} >>"$b/host.log"
		return 1
	fi
}

# lane PHASE...: boots, each with its arguments ("PHASE KVER FROM DISK
# [CMDLINE]"), one after the other while each finishes its phase; prints
# each boot's timing as it ends.
lane() {
	local spec a
	for spec in "$@"; do
		read -r -a a <<<"$spec"
		if boot "${a[@]}"; then
			cat "$logdir/${a[0]}/host.log"
		else
			cat "$logdir/${a[0]}/host.log"
			return 1
		fi
	done
}

P=$(kver amd64 "$prev")
C=$(kver amd64 "$cur")
# The side phases (off the chain below) boot with one vCPU when they run
# beside it, so that the chain's two keep a core to themselves.
side() {
	if [ "$parallel" = 1 ]; then
		e2e_smp=1 lane "$@" &
	else
		lane "$@" || true
	fi
}
# The chain install -> order-a -> current -> purged decides how long the
# test takes: it starts first (with E2E_WRAP, it queues first).
main_lane() {
	if lane "install $P image a"; then
		if [ "$parallel" = 1 ]; then
			lane "order-a $P install c" "current $C order-a same" "purged $C current same" &
			sleep 1
			side "order-b $P install b"
		else
			lane "order-a $P install c" "current $C order-a same" "purged $C current same" || true
			side "order-b $P install b"
		fi
	fi
	wait
}
if [ "$parallel" = 1 ]; then
	main_lane &
	sleep 1
	side "secure $P image s module.sig_enforce=1"
	wait
else
	main_lane
	side "secure $P image s module.sig_enforce=1"
fi

# The TAP: step N's checks, from every phase that has some, in the order
# of the phases.  A step passes only if each phase it needs finished (a
# phase that hung or never ran fails its steps) and no check failed.
phases=(install order-a order-b current purged secure)
needs=([1]="install" [2]="order-a" [3]="install order-a order-b" [4]="current"
	[5]="current purged" [6]="secure" [7]="secure" [8]="secure")
# What a step is called when no phase got to it.
names=([1]="apt install of the package" [2]="ours from the initramfs after a reboot"
	[3]="the upgrade to the current ABI, both configuration orders"
	[4]="ours after a reboot into the current ABI" [5]="apt purge"
	[6]="installing under module.sig_enforce=1" [7]="the ABI guard" [8]="the drift guard")
for n in 1 2 3 4 5 6 7 8; do
	missing=
	for ph in ${needs[n]}; do
		grep -qsx "phase $ph done" "$logdir/$ph/guest.log" || missing+=" $ph"
	done
	for ph in "${phases[@]}"; do
		if [ -f "$logdir/$ph/guest.log" ]; then cat "$logdir/$ph/guest.log"; fi
	done | awk -v n="$n" -v missing="${missing# }" -v name="${names[n]}" '
		/^step / {
			cur = $2; part = $0; sub(/^step [0-9]+ /, "", part)
			if (cur == n) {
				if (part ~ /^\(/) lines[++nl] = "    # " part
				else if (desc == "") desc = part
			}
			next
		}
		/^phase / { cur = ""; next }
		cur != n { next }
		/^(not )?ok / {
			k++; line = $0; sub(/^(not )?ok /, "", line)
			if ($1 == "not") { bad++; lines[++nl] = "    not ok " k " - " line }
			else lines[++nl] = "    ok " k " - " line
			next
		}
		/^#/ { lines[++nl] = "    " $0 }
		END {
			if (desc == "") desc = name
			if (k == 0) { print "not ok " n " - " desc " # not reached (boot: " missing ")"; exit }
			print "# Subtest: " n " - " desc
			for (i = 1; i <= nl; i++) print lines[i]
			if (missing != "") {
				k++; bad++
				print "    not ok " k " - the boot of " missing " finished its phase"
			}
			print "    1.." k
			print (bad ? "not ok " : "ok ") n " - " desc
		}'
done >"$logdir/tap"
cat "$logdir/tap"
for ph in "${phases[@]}"; do
	if [ -f "$logdir/$ph/host.log" ] && ! grep -qsx "phase $ph done" "$logdir/$ph/guest.log"; then
		echo "# the $ph boot did not finish: $logdir/$ph/console.log"
	fi
done
rm -rf "$work"
echo "# e2e: total $(fmt_ms $(($(now_ms) - t_start))); logs in $logdir"
! grep -qE '^not ok ' "$logdir/tap"
