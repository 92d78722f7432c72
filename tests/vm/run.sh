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
#   --boot-timeout S host-side allowance on top of the tests' timeouts
#                    ($BOOT_TIMEOUT, default 180)
#   --end-grace S    how long QEMU may run on after the last test ended
#                    ($END_GRACE, default 60): the guest's end-of-boot
#                    checks and its power-off
#   --settle S       the guest waits this long after the last test for late
#                    kernel reports ($SETTLE, default 1)
#   --device SPEC    one more QEMU -device SPEC (repeatable), e.g. edu
#   --lane NAME      the name its verdict lines give the guest (default
#                    ARCH; make check's debug lane boots amd64 as "debug")
#
# The test output travels on its own channel (amd64: the second serial port;
# s390x: the SCLP line-mode console), the kernel's console goes to another
# file, so printk never interleaves with TAP. Logs: LOGDIR/console.log (the
# whole console), LOGDIR/tap.log (the test channel), LOGDIR/results (one
# line per test: pass|fail|skip NAME ARCH MODE SECONDS REASON, and a line
# "fail boot ..." when the boot itself failed), LOGDIR/skips (each skipped
# test or subtest: NAME ARCH MODE N WHAT WHY, tab-separated).
#
# A test passes only if it exited 0 within its timeout, its TAP is
# complete (the plan "1..N" first, then N results, no "not ok", no "Bail
# out!"; tap_judge in harness.sh) and the console has no kernel report
# (oops, BUG, WARN, lockdep, KASAN, UBSAN, kmemleak, list corruption, hung
# task, RCU stall, soft lockup...; report_classes in harness.sh) from its
# start until the next test starts or the boot ends, except the classes it
# declared with a "# expect-splat: CLASS" line, each of which it must then
# provoke. "1..0 # SKIP why" is a skipped test; "ok N - what # SKIP why" a
# skipped subtest, counted. The boot fails, on top of its tests, if the
# guest did not reach "### DONE", QEMU did not exit on its own (killed at
# the boot's timeout, or END_GRACE after the last test ended), or the
# kernel reported anything before the first test.
# Prints each test's TAP and verdict; a failed test also gets its guest
# output and the last 40 console lines. Exits 1 if any test or the boot
# failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/harness.sh"

usage() {
	die "usage: run.sh [--abi ABI] [--ko PATH] [--tests DIR] [--kmods DIR] [--logdir DIR] [--boot-timeout S] [--end-grace S] [--settle S] [--device SPEC]... amd64|s390x stock|ours|swap TEST[:TIMEOUT]..."
}

abi=${KABI:-}
ko=
tests_dir=
logdir=
lane=
kmods=
boot_timeout=${BOOT_TIMEOUT:-180}
end_grace=${END_GRACE:-60}
settle=${SETTLE:-1}
devices=()
while [ $# -gt 0 ]; do
	case "$1" in
	--abi) abi=$2; shift 2 ;;
	--ko) ko=$2; shift 2 ;;
	--tests) tests_dir=$2; shift 2 ;;
	--logdir) logdir=$2; shift 2 ;;
	--kmods) kmods=$2; shift 2 ;;
	--boot-timeout) boot_timeout=$2; shift 2 ;;
	--end-grace) end_grace=$2; shift 2 ;;
	--settle) settle=$2; shift 2 ;;
	--device) devices+=(-device "$2"); shift 2 ;;
	--lane) lane=$2; shift 2 ;;
	--) shift; break ;;
	-*) usage ;;
	*) break ;;
	esac
done
[ $# -ge 3 ] || usage
arch=$(deb_arch "$1")
lane=${lane:-$arch}
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
skips=$logdir/skips
rm -f "$console" "$tap" "$results" "$skips" "$logdir/initrd.cpio"

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
cmdline="panic=-1 harness.tests=$tests_arg harness.mode=$mode harness.arch=$arch harness.settle=$settle"
# The vfio.ko this boot is for, by srcversion: the tests check that it is
# the one loaded (check_flavour in tests/guest/tap.h).
case "$mode" in
stock) vko=$(guest_root "$arch" "$abi")/lib/modules/$(kver "$arch" "$abi")/kernel/drivers/vfio/vfio.ko ;;
ours) vko=${ko:-$repo_dir/vfio.ko} ;;
*) vko= ;;
esac
if [ -n "$vko" ]; then
	srcv=$(modinfo -F srcversion "$vko" 2>/dev/null) || die "no srcversion in $vko"
	[ -n "$srcv" ] || die "no srcversion in $vko"
	cmdline+=" harness.vfio=$srcv"
fi

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

# tap_ended: the guest got past its last test (or gave up on one it could
# not kill): from then on it has end_grace seconds to power off.
tap_ended() {
	[ -f "$tap" ] || return 1
	grep -Eq '^### (DONE|UNKILLABLE )' "$tap" && return 0
	[ "$(grep -c '^### END ' "$tap" || true)" -ge "${#names[@]}" ]
}

# QEMU runs until it powers off; the host kills it at the boot's timeout,
# or end_grace seconds after the last test ended ("killed" says which).
t0=$(now_ms)
"${qemu[@]}" >"$logdir/qemu.out" 2>&1 &
qpid=$!
killed=
ended_ms=
while kill -0 "$qpid" 2>/dev/null; do
	sleep 0.5
	now=$(now_ms)
	if [ -z "$ended_ms" ] && tap_ended; then
		ended_ms=$now
	fi
	if [ $((now - t0)) -ge $((limit * 1000)) ]; then
		killed="killed at the boot's timeout (${limit}s)"
	elif [ -n "$ended_ms" ] && [ $((now - ended_ms)) -ge $((end_grace * 1000)) ]; then
		killed="killed ${end_grace}s after the last test ended (it did not power off)"
	fi
	if [ -n "$killed" ]; then
		kill -TERM "$qpid" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$qpid" 2>/dev/null || break
			sleep 0.5
		done
		kill -KILL "$qpid" 2>/dev/null || true
		break
	fi
done
qrc=0
wait "$qpid" || qrc=$?
wall=$(($(now_ms) - t0))
touch "$console" "$tap"
sed -i 's/\r$//' "$tap"
sed -i 's/\r$//' "$console"

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

# The kernel's reports, by test (window k is the k-th test; 0 the boot).
reports=$(console_reports "$console")
# window_reports K: the reports of window K ("PHASE<TAB>CLASS<TAB>LINE").
window_reports() {
	awk -F '\t' -v k="$1" '$1 == k { print $2 "\t" $3 "\t" $4 }' <<<"$reports"
}
# report_causes EXPECTED: one cause per class of the reports on stdin that
# is not in EXPECTED (" class class "), and one per expected class that has
# none; PHASE says when (after the test's END, at the end of the boot).
report_causes() {
	awk -F '\t' -v expd="$1" '
		{
			seen[$2]++
			if (index(expd, " " $2 " ") || ($2 in shown))
				next
			shown[$2] = 1
			when = $1 == "after" ? " after its END" : $1 == "end" ? " after its END, at the end of the boot" : ""
			line = $3; sub(/^\[ *[0-9.]+\] /, "", line)
			print "kernel report (" $2 ")" when ": " line
		}
		END {
			n = split(expd, e, " ")
			for (i = 1; i <= n; i++)
				if (e[i] != "" && !seen[e[i]])
					print "expected a " e[i] " report (# expect-splat: " e[i] "), the console has none"
		}
	'
}

boot_s=$(sed -n 's/^\[ *\([0-9.]*\)\] harness: BEGIN .*/\1/p' "$console" | head -n 1)
panic=$(grep -m1 -o 'Kernel panic - .*' "$console" || true)
[ -n "$panic" ] && panic=" ($panic)"
ends=$(grep -c '^### END ' "$tap" || true)
all_ended=0
[ "$ends" -ge "${#names[@]}" ] && all_ended=1
passed=0
failed=0
skipped=0
prev_died=
for i in "${!names[@]}"; do
	n=${names[$i]}
	causes=()
	verdict=pass
	why=
	secs='?'
	endl=$(grep -m1 "^### END $n rc=" "$tap" || true)
	out=$(block "$n")
	expect=" "
	if [ -n "$endl" ]; then
		rc=$(sed -n 's/.* rc=\([0-9]*\).*/\1/p' <<<"$endl")
		st=$(sed -n 's/.* start=\([0-9.]*\).*/\1/p' <<<"$endl")
		en=$(sed -n 's/.* end=\([0-9.]*\).*/\1/p' <<<"$endl")
		[ -n "$st" ] && secs=$(awk -v a="$st" -v b="$en" 'BEGIN { printf "%.1f", b - a }')
		if grep -q "^### TIMEOUT $n " "$tap"; then
			causes+=("timeout: killed after ${limits[$i]}s (blocked tasks in the console log)")
		fi
		judged=$(tap_judge "$rc" <<<"$out")
		verdict=$(sed -n 's/^verdict //p' <<<"$judged")
		mapfile -t tc < <(sed -n 's/^cause //p' <<<"$judged")
		if [ "$verdict" = fail ]; then
			causes+=("${tc[@]}")
		elif [ "$verdict" = skip ]; then
			why=${tc[0]:-}
		fi
		expect+=$(sed -n 's/^expect //p' <<<"$judged" | tr '\n' ' ')
		nskip=$(sed -n 's/^skipped //p' <<<"$judged")
		if [ "$verdict" = skip ]; then
			printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$arch" "$mode" 0 "(the whole test)" "$why" >>"$skips"
		elif [ "${nskip:-0}" -gt 0 ]; then
			why="$nskip subtests skipped"
			sed -n 's/^skip //p' <<<"$judged" |
				while IFS=$'\t' read -r sn sw sy; do
					printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$arch" "$mode" "$sn" "$sw" "$sy"
				done >>"$skips"
		fi
	elif [ -n "$prev_died" ]; then
		causes+=("not run: $prev_died")
	elif grep -q "^### UNKILLABLE $n" "$tap"; then
		causes+=("hang: unkillable after its ${limits[$i]}s timeout")
		prev_died="$n was unkillable"
	elif [ -n "$killed" ]; then
		causes+=("hang: boot $killed${panic}")
		prev_died="$n hung"
	elif grep -q "^### TEST $n\$" "$tap"; then
		causes+=("guest died during the test${panic:- (reset; qemu status $qrc)}")
		prev_died="the guest died in $n"
	else
		causes+=("guest never ran it${panic:- (qemu status $qrc)}")
		prev_died="the guest never got to the tests"
	fi
	kern=$(window_reports $((i + 1)))
	if [ -n "$kern" ]; then
		mapfile -t rcs < <(report_causes "$expect" <<<"$kern")
	else
		mapfile -t rcs < <(report_causes "$expect" </dev/null)
	fi
	causes+=("${rcs[@]}")
	if [ ${#causes[@]} -gt 0 ]; then
		status=fail
		why=$(printf '%s; ' "${causes[@]}")
		why=${why%; }
	else
		status=$verdict
	fi
	printf '%s %s %s %s %s %s\n' "$status" "$n" "$arch" "$mode" "$secs" "$why" >>"$results"
	case "$status" in
	pass) passed=$((passed + 1)); echo "PASS $n ($lane/$mode) ${secs}s${why:+ ($why)}" ;;
	skip) skipped=$((skipped + 1)); echo "SKIP $n ($lane/$mode): $why" ;;
	fail) failed=$((failed + 1)); echo "FAIL $n ($lane/$mode): $why" ;;
	esac
	if [ "$status" = fail ]; then
		echo "  guest output:"
		if [ -n "$out" ]; then indent '  | ' <<<"$out"; else echo "  | (none)"; fi
		[ -n "$kern" ] && cut -f3 <<<"$kern" | head -n 40 | indent '  kernel: '
		console_tail
	elif [ -n "$out" ]; then
		indent '    ' <<<"$out"
	fi
done

# The boot itself: it got to its end, QEMU exited on its own, and the
# kernel reported nothing before the first test. What a test's failure
# already explains (a hang, a death) is not repeated here.
bcauses=()
if [ "$all_ended" = 1 ]; then
	if [ -n "$killed" ]; then
		bcauses+=("QEMU did not exit on its own: $killed")
	elif [ "$qrc" != 0 ]; then
		bcauses+=("QEMU exited with status $qrc")
	fi
	if ! grep -q '^### DONE' "$tap"; then
		bcauses+=("the guest never reached ### DONE after its last test${panic:- (it powered off or reset)}")
	fi
fi
kern=$(window_reports 0)
if [ -n "$kern" ]; then
	mapfile -t rcs < <(report_causes " " <<<"$kern" | sed 's/^kernel report/kernel report before the first test/')
	bcauses+=("${rcs[@]}")
fi
if [ ${#bcauses[@]} -gt 0 ]; then
	why=$(printf '%s; ' "${bcauses[@]}")
	why=${why%; }
	printf 'fail boot %s %s %s %s\n' "$arch" "$mode" "$(fmt_ms "$wall")" "$why" >>"$results"
	failed=$((failed + 1))
	echo "FAIL boot ($arch/$mode $label): $why"
	[ -n "$kern" ] && cut -f3 <<<"$kern" | head -n 40 | indent '  kernel: '
	console_tail
fi
echo "boot: qemu ran $(fmt_ms "$wall"), guest reached the first test at ${boot_s:-?}s uptime; logs: $logdir"
# The initramfs is big and cheap to rebuild: keep it only for a failed boot.
[ "$failed" -eq 0 ] && [ -z "${KEEP_INITRD:-}" ] && rm -f "$initrd"
if [ -z "${HARNESS_NESTED:-}" ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
fi
[ "$failed" -eq 0 ]
