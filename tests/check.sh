#!/bin/bash
# check.sh - the whole test suite (make check)
#
# 1. Host checks: build our vfio.ko for the amd64 ABI under test (in
#    build/amd64/ABI, a copy of the sources; the tree stays clean), the
#    abi-check against every amd64 6.1 ABI the mirror offers (one test each),
#    a lint of every shell file, checkpatch (tests/style.sh), and the
#    guest test programs' build.
# 2. The amd64 guest suite (tests/guest/tests.list) on our vfio.ko and on the
#    stock one, in QEMU (tests/vm/run.sh): one boot per test and mode.
# 3. The s390x guest suite on the s390x test system (tests/vm/s390x-stack.sh:
#    a stock s390x kernel plus the vfio stack built from Debian's source):
#    our vfio.ko cross-built and abi-checked against it, then the guests.
#    The s390x test system is built first (tests/vm/s390x-stack.sh; cached).
# Ends with "N passed, N failed, N skipped"; exits 1 on any failure.
#
# Knobs (environment):
#   ARCH=amd64|s390x|all   guest suites to run (default all)
#   TESTS="a b"            only these guest tests (named tests may be
#                          "manual" ones, e.g. the harness self-tests
#                          selftest_fail and selftest_hang); host checks are
#                          then skipped unless HOST_CHECKS=1
#   MODES="stock ours swap" vfio.ko flavours to test (swap: both, booting
#                          on the stock one; the live-swap test)
#   KABI=6.1.0-57          the amd64 ABI the guests boot (default: current)
#   ABIS="6.1.0-57 ..."    ABIs for the abi-check (default: all on the mirror)
#   HOST_CHECKS=0|1        run the host checks (default 1 without TESTS)
#   LOGDIR=DIR             logs (default build/logs); KEEP_LOGS=1 keeps the
#                          logs of the previous run instead of clearing them
#   OURS_KO=PATH           test this vfio.ko as "ours" instead of building
#                          (e.g. the stock rebuild, to exercise the harness)
#   BOOT_TIMEOUT=S         host-side boot allowance per guest (default 180)
#   S390X=1|auto           s390x: build (or reuse from the cache) the test
#                          system (1, default), or only use one already
#                          built (auto); S390X_ABI picks its ABI
#   OURS_KO_S390X=PATH     like OURS_KO, for s390x
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/vm/harness.sh"
cd "$repo_dir"

# A fresh machine gets what the suite needs (apt) first.
"$here/deps.sh"

suite_arches=${ARCH:-all}
[ "$suite_arches" = all ] && suite_arches="amd64 s390x"
# ARCH means something else to kbuild; "make check ARCH=..." also puts it in
# MAKEFLAGS, which the kernel builds below would inherit.
unset ARCH MAKEFLAGS MAKEOVERRIDES MFLAGS
modes=${MODES:-stock ours swap}
# needs_ours: a mode under test boots with our vfio.ko in the guest.
needs_ours() {
	[[ " $modes " == *" ours "* || " $modes " == *" swap "* ]]
}
tests_filter=${TESTS:-}
if [ -n "$tests_filter" ]; then
	host_checks=${HOST_CHECKS:-0}
else
	host_checks=${HOST_CHECKS:-1}
fi
logdir=${LOGDIR:-$repo_dir/build/logs}
if [ "${KEEP_LOGS:-0}" != 1 ] && [ -d "$logdir" ]; then
	rm -rf "$logdir"
fi
mkdir -p "$logdir"
abi=${KABI:-$(current_abi amd64)}
t_start=$(now_ms)

passed=0
failed=0
skipped=0
failures=()

# result pass|fail|skip NAME [REASON]
result() {
	case "$1" in
	pass) passed=$((passed + 1)); echo "PASS $2" ;;
	fail) failed=$((failed + 1)); failures+=("$2"); echo "FAIL $2${3:+: $3}" ;;
	skip) skipped=$((skipped + 1)); echo "SKIP $2${3:+: $3}" ;;
	esac
}

# show_log FILE: the end of a failed step's log.
show_log() {
	tail -n "${TAIL_LINES:-40}" "$1" | sed 's/^/  | /'
	echo "  full log: $1"
}

src_complete() {
	local o
	for o in src/vfio_main src/group src/container src/iova_bitmap; do
		[ -f "$o.c" ] || return 1
	done
}

# build_ours ABI: build vfio.ko against ABI's headers in build/amd64/ABI.
build_ours() {
	local a=$1 b kdir
	b=$repo_dir/build/amd64/$a
	kdir=$(abi_dir amd64 "$a")/root/lib/modules/$(kver amd64 "$a")/build
	mkdir -p "$b"
	rm -rf "$b/src" "$b/include"
	cp -a Kbuild src include "$b/"
	make -C "$kdir" "M=$b" -j"$(nproc)" modules
}

# ---------------------------------------------------------------- host checks
ours_ko=
ours_why=
if [ -n "${OURS_KO:-}" ]; then
	ours_ko=$OURS_KO
	echo "NOTE: testing $ours_ko as \"ours\" (OURS_KO)"
elif { needs_ours && [[ " $suite_arches " == *" amd64 "* ]]; } ||
	[ "$host_checks" = 1 ]; then
	name="build vfio.ko (amd64 $abi)"
	blog=$logdir/build-amd64-$abi.log
	if ! src_complete; then
		result fail "$name" "src/ is incomplete"
		ours_why="our vfio.ko did not build"
	elif ! "$harness_dir/fetch.sh" amd64 "$abi" >"$blog" 2>&1 || ! build_ours "$abi" >>"$blog" 2>&1; then
		result fail "$name"
		show_log "$blog"
		ours_why="our vfio.ko did not build"
	elif grep -E 'WARNING: modpost:|warning:' "$blog" >/dev/null; then
		result fail "$name" "compiler or modpost warnings"
		grep -E 'WARNING: modpost:|warning:' "$blog" | sed 's/^/  | /'
		ours_ko=$repo_dir/build/amd64/$abi/vfio.ko
	else
		result pass "$name"
		ours_ko=$repo_dir/build/amd64/$abi/vfio.ko
	fi
fi

if [ "$host_checks" = 1 ]; then
	# The abi-check against every amd64 ABI the mirror has.
	abis=${ABIS:-$(all_abis amd64)}
	[ -n "$abis" ] || abis=$abi
	for a in $abis; do
		name="abi-check amd64 $a"
		alog=$logdir/abi-check-amd64-$a.log
		if ! src_complete; then
			result fail "$name" "src/ is incomplete"
			continue
		fi
		if ! "$harness_dir/fetch.sh" amd64 "$a" >"$alog" 2>&1; then
			result fail "$name" "cannot fetch the kernel"
			show_log "$alog"
			continue
		fi
		kdir=$(abi_dir amd64 "$a")/root/lib/modules/$(kver amd64 "$a")/build
		if { [ "$a" = "$abi" ] || build_ours "$a" >>"$alog" 2>&1; } &&
			tests/abi-check.sh "build/amd64/$a/Module.symvers" "$kdir/Module.symvers" >>"$alog" 2>&1; then
			result pass "$name"
		else
			result fail "$name"
			show_log "$alog"
		fi
	done

	# Lint every shell file in the repository.
	mapfile -t shells < <(
		{
			git ls-files --cached --others --exclude-standard 2>/dev/null ||
				find . -path ./build -prune -o -type f -print
		} | sort -u | while read -r f; do
			[ -f "$f" ] || continue
			case "$f" in
			build/* | .git/*) continue ;;
			*.sh | *.bash) echo "$f" ;;
			*) head -c 64 "$f" 2>/dev/null | head -n 1 | grep -Eq '^#!.*(/|env )(ba|da)?sh\b' && echo "$f" ;;
			esac
		done
		ls tests/vm/*.sh
	)
	mapfile -t shells < <(printf '%s\n' "${shells[@]}" | sed 's|^\./||' | sort -u)
	slog=$logdir/shellcheck.log
	if shellcheck -x -S style "${shells[@]}" >"$slog" 2>&1; then
		result pass "shellcheck (${#shells[@]} files)"
	else
		result fail "shellcheck (${#shells[@]} files)"
		show_log "$slog"
	fi

	# The host-side delivery tests: DKMS into a throw-away root, and the
	# swap/rebind helpers against a fake sysfs.
	for t in tests/host/dkms_test.sh tests/host/rebind_test.sh; do
		hlog=$logdir/host-$(basename "$t" .sh).log
		if "$t" >"$hlog" 2>&1; then
			result pass "$t: $(grep -c '^ok' "$hlog") ok$(grep -q '# SKIP' "$hlog" && echo ", with skips")"
		else
			result fail "$t"
			grep '^not ok' "$hlog" | sed 's/^/  | /'
			show_log "$hlog"
		fi
	done

	stlog=$logdir/style.log
	if tests/style.sh >"$stlog" 2>&1; then
		result pass "style: $(tail -n 1 "$stlog" | sed 's/^style: //; s/ (.*//')"
	else
		result fail "style (checkpatch --strict)"
		show_log "$stlog"
	fi

	# The guide's rule 2: no run of 12+ lines identical to Debian's
	# drivers/vfio (tests/own-code.sh prints each run and the longest).
	oclog=$logdir/own-code.log
	if tests/own-code.sh >"$oclog" 2>&1; then
		result pass "own-code: $(tail -n 1 "$oclog" | sed 's/^own-code: //; s/ identical to .*//')"
	else
		result fail "own-code (runs identical to Debian's drivers/vfio)"
		show_log "$oclog"
	fi
fi

timings="host checks $(fmt_ms $(($(now_ms) - t_start)))"

# --------------------------------------------------------------- guest suites
# tests_for ARCH: "NAME MODES TIMEOUT" of the tests.list entries to run.
tests_for() {
	local name arches tmodes limit flags
	while read -r name arches tmodes limit flags; do
		case "$name" in '' | '#'*) continue ;; esac
		[[ ",$arches," == *",$1,"* ]] || continue
		if [ -n "$tests_filter" ]; then
			[[ " $tests_filter " == *" $name "* ]] || continue
		elif [[ ",${flags:-}," == *",manual,"* ]]; then
			continue
		fi
		echo "$name $tmodes $limit"
	done <tests/guest/tests.list
}

# build_kmods ARCH ABI KDIR [MAKE ARGS...]: the test modules of tests/kmod
# for that kernel, in build/kmod/ARCH/ABI (a copy of the sources); sets
# kmods to that directory (empty: nothing to build).
build_kmods() {
	local a=$1 ka=$2 kdir=$3 out klog
	shift 3
	kmods=
	[ -f tests/kmod/Kbuild ] || return 0
	out=$repo_dir/build/kmod/$a/$ka
	klog=$logdir/kmod-$a-$ka.log
	mkdir -p "$out"
	rm -f "$out"/*.c "$out"/*.h
	cp -a tests/kmod/Kbuild tests/kmod/*.c "$out/"
	cp -a tests/kmod/*.h "$out/" 2>/dev/null || true
	if make -C "$kdir" "M=$out" "$@" -j"$(nproc)" modules >"$klog" 2>&1 &&
		! grep -E 'WARNING: modpost:|warning:' "$klog"; then
		result pass "build test modules ($a $ka)"
		kmods=$out
	else
		result fail "build test modules ($a $ka)"
		show_log "$klog"
		kmods=$out/failed
	fi
}

# guest_suite ARCH ABI OURS_KO WHY_NO_OURS KMODS_DIR
guest_suite() {
	local a=$1 ga=$2 ko=$3 no_ours=$4 kmods=${5:-}
	local name tmodes limit m glog res ko_args rc st n why t0
	glog=$logdir/guest-build-$a.log
	if ! build_guest "$a" "$repo_dir/build/guest/$a" >"$glog" 2>&1; then
		result fail "guest programs build ($a)"
		show_log "$glog"
		return
	fi
	[ "$host_checks" = 1 ] && result pass "guest programs build ($a)"
	while read -r name tmodes limit; do
		for m in $modes; do
			[[ ",$tmodes," == *",$m,"* ]] || continue
			ko_args=()
			if [ "$m" = ours ] || [ "$m" = swap ]; then
				if [ -z "$ko" ]; then
					result fail "$name ($a/$m)" "not run: ${no_ours:-no vfio.ko of ours}"
					continue
				fi
				ko_args=(--ko "$ko")
			fi
			# No stale tests/kmod/*.ko: this kernel's build or none.
			ko_args+=(--kmods "${kmods:-$repo_dir/build/kmod/none}")
			res=$logdir/$a-$m-$name
			t0=$(now_ms)
			rc=0
			HARNESS_NESTED=1 "$harness_dir/run.sh" --abi "$ga" "${ko_args[@]}" \
				--tests "$repo_dir/build/guest/$a" --logdir "$res" \
				"$a" "$m" "$name:$limit" || rc=$?
			if [ ! -s "$res/results" ]; then
				result fail "$name ($a/$m)" "the harness failed (status $rc)"
				continue
			fi
			while read -r st n _ _ _ why; do
				case "$st" in
				pass) passed=$((passed + 1)) ;;
				skip) skipped=$((skipped + 1)) ;;
				*) failed=$((failed + 1)); failures+=("$n ($a/$m): $why [console: $res/console.log]") ;;
				esac
			done <"$res/results"
			echo "  ($a/$m $name: $(fmt_ms $(($(now_ms) - t0))) with the initramfs)"
		done
	done < <(tests_for "$a")
}

# s390x_stack: the s390x test system of tests/vm/s390x-stack.sh: built by
# it (S390X=1, the default), else the newest one already built (none: empty).
s390x_stack() {
	local d
	if [ "${S390X:-1}" = 1 ]; then
		"$harness_dir/s390x-stack.sh" ${S390X_ABI:+"$S390X_ABI"}
		return
	fi
	for d in $(printf '%s\n' "$VFIO_CORE_CACHE"/s390x-stack/* | sort -V -r); do
		[ -z "${S390X_ABI:-}" ] || [ "${d##*/}" = "$S390X_ABI" ] || continue
		if [ -f "$d/.done" ] && [ -f "$d/env" ]; then
			echo "$d"
			return
		fi
	done
}

s390x_suite() {
	local n stack slog a390 kdir cross kcpp ref v kmods ko=
	local why="our vfio.ko did not build for s390x"
	n=$(tests_for s390x | wc -l)
	[ "$n" -gt 0 ] || return 0
	slog=$logdir/s390x-stack.log
	if ! stack=$(s390x_stack 2>"$slog"); then
		result fail "s390x stack (tests/vm/s390x-stack.sh)"
		show_log "$slog"
		return
	fi
	if [ -z "$stack" ]; then
		result skip "s390x guest suite ($n tests)" \
			"no s390x stack built yet (S390X=1 builds it: tests/vm/s390x-stack.sh)"
		return
	fi
	a390=${stack##*/}
	# shellcheck source=/dev/null disable=SC2153 # its variables
	mapfile -t v < <(set +u; . "$stack/env"
		printf '%s\n' "$KDIR" "$CROSS_COMPILE" "$KCPPFLAGS" "$REF_SYMVERS" \
			"${GUEST_ROOT:-}" "${GUEST_KERNEL:-}")
	kdir=${v[0]} cross=${v[1]} kcpp=${v[2]} ref=${v[3]}
	if [ -z "${v[4]}" ] || [ -z "${v[5]}" ]; then
		result skip "s390x guest suite ($n tests)" "$stack/env names no GUEST_ROOT/GUEST_KERNEL yet"
		return
	fi
	if [ -n "${OURS_KO_S390X:-}" ]; then
		ko=$OURS_KO_S390X
	elif ! { needs_ours || [ "$host_checks" = 1 ]; }; then
		:
	elif ! src_complete; then
		result fail "build vfio.ko (s390x $a390)" "src/ is incomplete"
	else
		local b=$repo_dir/build/s390x/$a390 blog=$logdir/build-s390x-$a390.log
		mkdir -p "$b"
		rm -rf "$b/src" "$b/include"
		cp -a Kbuild src include "$b/"
		if make -C "$kdir" "M=$b" ARCH=s390 "CROSS_COMPILE=$cross" "KCPPFLAGS=$kcpp" \
			-j"$(nproc)" modules >"$blog" 2>&1; then
			result pass "build vfio.ko (s390x $a390)"
			ko=$b/vfio.ko
			if tests/abi-check.sh "$b/Module.symvers" "$ref" >>"$blog" 2>&1; then
				result pass "abi-check s390x $a390"
			else
				result fail "abi-check s390x $a390"
				show_log "$blog"
			fi
		else
			result fail "build vfio.ko (s390x $a390)"
			show_log "$blog"
		fi
	fi
	build_kmods s390x "$a390" "$kdir" ARCH=s390 "CROSS_COMPILE=$cross" \
		"KCPPFLAGS=$kcpp" "KBUILD_EXTRA_SYMBOLS=$ref ${ref%/stock/Module.symvers}/deps/Module.symvers"
	GUEST_ROOT=${v[4]} GUEST_KERNEL=${v[5]} guest_suite s390x "$a390" "$ko" "$why" "$kmods"
}

# fuzz_compare ARCH: the fuzz test's errno histograms must be the same on
# stock and on ours (same seed, same calls).
fuzz_compare() {
	local a=$1 st=$logdir/$1-stock-fuzz/tap.log ou=$logdir/$1-ours-fuzz/tap.log
	local clog=$logdir/fuzz-compare-$1.log
	[ -s "$st" ] && [ -s "$ou" ] || return 0
	if tests/guest/fuzz_compare.sh "$st" "$ou" >"$clog" 2>&1; then
		result pass "fuzz histograms: stock = ours ($a)"
	else
		result fail "fuzz histograms: stock = ours ($a)"
		show_log "$clog"
	fi
}

for a in $suite_arches; do
	t0=$(now_ms)
	case "$a" in
	amd64)
		"$harness_dir/fetch.sh" amd64 "$abi" >/dev/null
		build_kmods amd64 "$abi" "$(abi_dir amd64 "$abi")/root/lib/modules/$(kver amd64 "$abi")/build"
		guest_suite amd64 "$abi" "$ours_ko" "$ours_why" "$kmods"
		;;
	s390x) s390x_suite ;;
	*) die "unknown ARCH '$a'" ;;
	esac
	fuzz_compare "$a"
	timings+=", $a suite $(fmt_ms $(($(now_ms) - t0)))"
done

echo
echo "check: took $(fmt_ms $(($(now_ms) - t_start))) ($timings); logs in $logdir"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
