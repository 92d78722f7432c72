#!/bin/bash
# run.sh [options] ARCH MODE TEST[:TIMEOUT]...
#
# Boots one QEMU (TCG) guest of ARCH with the initramfs of MODE (stock or
# ours, see initramfs.sh) and runs the guest tests /tests/TEST in it, in
# order, each with a guest-side TIMEOUT in seconds (default 60). The whole
# boot has a host-side timeout too; a boot killed at it is a "hang".
#
# Options:
#   --abi ABI        kernel ABI (default $KABI, else the current one)
#   --ko PATH        our vfio.ko for MODE=ours (default: the repo's vfio.ko)
#   --tests DIR      the built guest test programs (default: build them from
#                    tests/guest into build/guest/ARCH)
#   --kmods DIR      extra test modules DIR/*.ko (default: tests/kmod)
#   --logdir DIR     where the logs go (default build/logs/ARCH-MODE-TESTS)
#   --boot-timeout S host-side allowance on top of the tests' timeouts (180)
#   --device SPEC    one more QEMU -device SPEC (repeatable), e.g. edu
#
# The test output travels on its own channel (amd64: the second serial port;
# s390x: the SCLP line-mode console), the kernel's console goes to another
# file, so printk never interleaves with TAP. Logs: LOGDIR/console.log (the
# whole console), LOGDIR/tap.log (the test channel), LOGDIR/results (one
# line per test: pass|fail|skip NAME ARCH MODE SECONDS REASON).
# Prints each test's TAP and verdict; a failed test also gets its guest
# output and the last 40 console lines. Exits 1 if any test failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/harness.sh"

usage() {
	die "usage: run.sh [--abi ABI] [--ko PATH] [--tests DIR] [--kmods DIR] [--logdir DIR] [--boot-timeout S] [--device SPEC]... amd64|s390x stock|ours|swap TEST[:TIMEOUT]..."
}

abi=${KABI:-}
ko=
tests_dir=
logdir=
kmods=
boot_timeout=${BOOT_TIMEOUT:-180}
devices=()
while [ $# -gt 0 ]; do
	case "$1" in
	--abi) abi=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	--tests) tests_dir=$2; shift 2 ;;
	--logdir) logdir=$2; shift 2 ;;
	--kmods) kmods=$2; shift 2 ;;
	--boot-timeout) boot_timeout=$2; shift 2 ;;
	--device) devices+=(-device "$2"); shift 2 ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -ge 3 ] || usage
arch=$(deb_arch "$1")
mode=$2
shift 2
abi=${abi:-$(current_abi "$arch")}
if [ -z "$tests_dir" ]; then
	tests_dir=$repo_dir/build/guest/$arch
	build_guest "$arch" "$tests_dir" || die "cannot build the guest tests"
fi

names=()
limits=()
total_limit=0
for t in "$@"; do
	n=${t%%:*}
	l=60
	[ "$n" != "$t" ] && l=${t#*:}
	[[ $l =~ ^[0-9]+$ ]] || die "bad timeout in '$t'"
	names+=("$n")
	limits+=("$l")
	total_limit=$((total_limit + l + 10))
done
label=$(IFS=+; echo "${names[*]}")
logdir=${logdir:-$repo_dir/build/logs/$arch-$mode-$label}
mkdir -p "$logdir"
console=$logdir/console.log
tap=$logdir/tap.log
results=$logdir/results
rm -f "$console" "$tap" "$results" "$logdir/initrd.cpio"

kernel=$(guest_kernel "$arch" "$abi")
[ -f "$kernel" ] || die "no kernel $kernel (run tests/vm/fetch.sh $arch $abi)"

ko_args=()
[ -n "$ko" ] && ko_args=(--ko "$ko")
[ -n "$kmods" ] && ko_args+=(--kmods "$kmods")
initrd=$logdir/initrd.cpio
"$here/initramfs.sh" "${ko_args[@]}" --tests "$tests_dir" "$arch" "$abi" "$mode" "$initrd"

tests_arg=
for i in "${!names[@]}"; do
	tests_arg+="${tests_arg:+,}${names[$i]}:${limits[$i]}"
done
cmdline="panic=-1 harness.tests=$tests_arg harness.mode=$mode harness.arch=$arch"

case "$arch" in
amd64)
	qemu=(qemu-system-x86_64 -accel tcg -cpu max -M q35 -m 2G -smp 2
		-device "intel-iommu,intremap=on"
		-device edu -device e1000e
		-serial "file:$console" -serial "file:$tap")
	# no_timer_check: under a loaded TCG host the early IO-APIC timer
	# check can miss its window and panic the boot.
	cmdline="console=ttyS0 intel_iommu=on no_timer_check harness.tap=/dev/ttyS1 $cmdline"
	;;
s390x)
	qemu=(qemu-system-s390x -accel tcg -cpu max -M s390-ccw-virtio -m 2G -smp 2
		-device virtio-net-ccw
		-device "zpci,uid=1,fid=1,target=pci0" -device "virtio-rng-pci,id=pci0"
		-chardev "file,id=con,path=$console" -device "sclpconsole,chardev=con"
		-chardev "file,id=tap,path=$tap" -device "sclplmconsole,chardev=tap")
	cmdline="console=ttysclp0 harness.tap=/dev/sclp_line0 $cmdline"
	;;
esac
qemu+=("${devices[@]}" -nodefaults -display none -monitor none -no-reboot
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline")
printf '%q ' "${qemu[@]}" >"$logdir/qemu.cmd"
echo >>"$logdir/qemu.cmd"

limit=$((boot_timeout + total_limit))
t0=$(now_ms)
qrc=0
timeout -k 5 "$limit" "${qemu[@]}" >"$logdir/qemu.out" 2>&1 || qrc=$?
wall=$(($(now_ms) - t0))
touch "$console" "$tap"
sed -i 's/\r$//' "$tap"
sed -i 's/\r$//' "$console"

hung=0
[ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ] && hung=1

indent() {
	sed "s/^/$1/"
}

console_tail() {
	echo "  console tail ($console):"
	tail -n "${TAIL_LINES:-40}" "$console" | sed 's/^/  | /'
}

# block NAME: the test's lines on the TAP channel, markers excluded.
block() {
	awk -v n="$1" '
		$0 == "### TEST " n { on = 1; next }
		on && /^### (TEST|DONE)/ { exit }
		on && /^### END / { exit }
		on && !/^### / { print }
	' "$tap"
}

# splats NAME: kernel warnings in the console while NAME ran.
splats() {
	awk -v b="harness: BEGIN $1" -v e="harness: END $1 " '
		index($0, b) { on = 1; next }
		on && index($0, e) { exit }
		on && /(BUG:|Oops|WARNING:|Kernel panic|general protection fault|\[#[0-9]+\]|end trace|possible circular locking|possible recursive locking|UBSAN:|KASAN:|list_(add|del) corruption)/ { print }
	' "$console"
}

boot_s=$(sed -n 's/^\[ *\([0-9.]*\)\] harness: BEGIN .*/\1/p' "$console" | head -n 1)
panic=$(grep -m1 -o 'Kernel panic - .*' "$console" || true)
[ -n "$panic" ] && panic=" ($panic)"
passed=0
failed=0
skipped=0
prev_died=
for i in "${!names[@]}"; do
	n=${names[$i]}
	status=pass
	why=
	secs='?'
	endl=$(grep -m1 "^### END $n rc=" "$tap" || true)
	out=$(block "$n")
	if [ -n "$endl" ]; then
		rc=$(sed -n 's/.* rc=\([0-9]*\).*/\1/p' <<<"$endl")
		st=$(sed -n 's/.* start=\([0-9.]*\).*/\1/p' <<<"$endl")
		en=$(sed -n 's/.* end=\([0-9.]*\).*/\1/p' <<<"$endl")
		[ -n "$st" ] && secs=$(awk -v a="$st" -v b="$en" 'BEGIN { printf "%.1f", b - a }')
		if grep -q "^### TIMEOUT $n " "$tap"; then
			status=fail why="timeout: killed after ${limits[$i]}s (blocked tasks in the console log)"
		elif [ "$rc" != 0 ]; then
			status=fail why="exit status $rc"
		elif grep -q '^not ok' <<<"$out"; then
			status=fail why="a subtest failed"
		elif grep -Eq '^1\.\.0( |$)' <<<"$out" && ! grep -q '^ok' <<<"$out"; then
			status=skip why=$(sed -n 's/^1\.\.0 *# *[Ss][Kk][Ii][Pp] *//p' <<<"$out" | head -n 1)
		elif ! grep -q '^ok' <<<"$out"; then
			status=fail why="no TAP result"
		else
			plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' <<<"$out" | head -n 1)
			count=$(grep -Ec '^(not )?ok' <<<"$out" || true)
			if [ -n "$plan" ] && [ "$plan" != "$count" ]; then
				status=fail why="planned $plan subtests, ran $count"
			fi
		fi
		kern=$(splats "$n")
		if [ "$status" != fail ] && [ -n "$kern" ]; then
			status=fail why="kernel warning: $(head -n 1 <<<"$kern")"
		fi
	elif [ -n "$prev_died" ]; then
		status=fail why="not run: $prev_died"
	elif grep -q "^### UNKILLABLE $n" "$tap"; then
		status=fail why="hang: unkillable after its ${limits[$i]}s timeout"
		prev_died="$n was unkillable"
	elif [ "$hung" = 1 ]; then
		status=fail why="hang: boot killed after ${limit}s${panic}"
		prev_died="$n hung"
	elif grep -q "^### TEST $n\$" "$tap"; then
		status=fail why="guest died during the test${panic:- (reset; qemu status $qrc)}"
		prev_died="the guest died in $n"
	else
		status=fail why="guest never ran it${panic:- (qemu status $qrc)}"
		prev_died="the guest never got to the tests"
	fi
	printf '%s %s %s %s %s %s\n' "$status" "$n" "$arch" "$mode" "$secs" "$why" >>"$results"
	case "$status" in
	pass) passed=$((passed + 1)); echo "PASS $n ($arch/$mode) ${secs}s" ;;
	skip) skipped=$((skipped + 1)); echo "SKIP $n ($arch/$mode): $why" ;;
	fail) failed=$((failed + 1)); echo "FAIL $n ($arch/$mode): $why" ;;
	esac
	if [ "$status" = fail ]; then
		echo "  guest output:"
		if [ -n "$out" ]; then indent '  | ' <<<"$out"; else echo "  | (none)"; fi
		[ -n "${kern:-}" ] && indent '  kernel: ' <<<"$kern"
		console_tail
	elif [ -n "$out" ]; then
		indent '    ' <<<"$out"
	fi
	kern=
done
echo "boot: qemu ran $(fmt_ms "$wall"), guest reached the first test at ${boot_s:-?}s uptime; logs: $logdir"
# The initramfs is big and cheap to rebuild: keep it only for a failed boot.
[ "$failed" -eq 0 ] && [ -z "${KEEP_INITRD:-}" ] && rm -f "$initrd"
if [ -z "${HARNESS_NESTED:-}" ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
fi
[ "$failed" -eq 0 ]
