#!/bin/bash
# check.sh - the whole test suite (make check)
#
# 1. Host checks: the abi-check of our vfio.ko against every amd64 6.1 ABI
#    the mirror offers (one test each), a lint of every shell file, the
#    host tests (tests/host/*_test.sh: DKMS in a throw-away root, the
#    helpers against a fake sysfs), checkpatch (tests/style.sh) and the
#    own-code check (tests/own-code.sh: nothing pasted from Debian).
# 2. Guest suites, one per lane: a kernel and the tests.list entries whose
#    ARCHES name the lane. amd64: Debian's current amd64 kernel. s390x: the
#    s390x test system (tests/vm/s390x-stack.sh: a stock s390x kernel plus
#    the vfio stack built from Debian's source). debug: the amd64 guests
#    on a kernel with lockdep, KASAN, UBSAN and kmemleak built from Debian's
#    source (tests/vm/debug-kernel.sh), its own vfio.ko the lane's stock.
#    Each lane first builds our vfio.ko against its kernel (and abi-checks
#    it where the lane has a reference), the test modules (tests/kmod) and
#    the guest programs; then every test boots in QEMU (tests/vm/run.sh)
#    once per mode: stock, ours, swap (both, booting on stock: the
#    live-swap test).
# 3. The harness's self-tests (tests.list: selftest): each must end as it
#    declares (e.g. FAIL for "no TAP plan"), else the harness is broken.
#
# Every build, host check and boot is a job; up to JOBS run at once, each
# with its output in one piece when it ends. The summary lists failures
# and skips in the order the jobs were queued, whatever finished first.
# A skip is counted, test or subtest alike; any skip not listed in
# tests/expected-skips (what this project's machine kind cannot do, e.g.
# KVM on an s390x TCG guest) is a failure.
# Ends with "N passed, N failed, N skipped (...)"; exits 1 on any failure.
#
# Knobs (environment):
#   ARCH=amd64|s390x|debug|all   lanes to run (default all)
#   TESTS="a b"            only these guest tests (named tests may be
#                          "manual" ones, e.g. selftest_wedge; "e2e" is
#                          the end-to-end test); host checks are then
#                          skipped unless HOST_CHECKS=1
#   MODES="stock ours swap" vfio.ko flavours to test (swap: both, booting
#                          on the stock one; the live-swap test)
#   JOBS=N                 jobs at once (default 2; a TCG guest keeps about
#                          one core busy)
#   KABI=6.1.0-57          the amd64 ABI the guests boot (default: current)
#   ABIS="6.1.0-57 ..."    ABIs for the abi-check (default: all on the mirror)
#   HOST_CHECKS=0|1        run the host checks (default 1 without TESTS)
#   LOGDIR=DIR             logs (default build/logs); KEEP_LOGS=1 keeps the
#                          logs of the previous run instead of clearing them
#   OURS_KO=PATH           test this vfio.ko as "ours" on amd64 instead of
#                          building (e.g. the stock rebuild, to exercise the
#                          harness); OURS_KO_S390X=PATH likewise for s390x
#   BOOT_TIMEOUT=S         host-side boot allowance per guest (default 180)
#   END_GRACE=S            how long a guest may run on after its last test
#                          (default 60; run.sh)
#   DEBUG_FACTOR=N         the debug lane's timeouts: tests.list's times N
#                          (default 3: lockdep and KASAN under TCG are slow)
#   S390X=1|auto           s390x: build (or reuse from the cache) the test
#                          system (1, default), or only use one already
#                          built (auto); S390X_ABI picks its ABI
#   E2E=0|1                the end-to-end test (tests/e2e/run.sh): default
#                          1 for the whole suite, 0 with TESTS (TESTS=e2e
#                          runs it alone)
#   SKIPS=strict|report    strict (default): a skip not in
#                          tests/expected-skips fails the run; report: list
#                          it, do not fail (another machine kind)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/vm/harness.sh"
cd "$repo_dir"

# A fresh machine gets what the suite needs (apt) first.
"$here/deps.sh"

lanes=${ARCH:-all}
[ "$lanes" = all ] && lanes="amd64 s390x debug"
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
jobs_max=${JOBS:-2}
[[ $jobs_max =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive number, not '$jobs_max'"
skip_policy=${SKIPS:-strict}
case "$skip_policy" in strict | report) ;; *) die "SKIPS must be strict or report" ;; esac
expected_skips=$here/expected-skips
logdir=${LOGDIR:-$repo_dir/build/logs}
if [ "${KEEP_LOGS:-0}" != 1 ] && [ -d "$logdir" ]; then
	rm -rf "$logdir"
fi
mkdir -p "$logdir"
abi=${KABI:-$(current_abi amd64)}
t_start=$(now_ms)

# ----------------------------------------------------------------- verdicts
# result pass|fail|skip NAME [REASON]: a verdict of the running job, into
# its results file (tab-separated) and its output; record: only the file.
record() {
	printf '%s\t%s\t%s\n' "$1" "$2" "${3:-}" >>"$RESULTS"
}
result() {
	record "$@"
	case "$1" in
	pass) echo "PASS $2${3:+ ($3)}" ;;
	fail) echo "FAIL $2${3:+: $3}" ;;
	skip) echo "SKIP $2${3:+: $3}" ;;
	esac
}

# skipped WHERE TEST N WHAT WHY: a skipped subtest (N > 0) or test (N = 0)
# of the running job; WHERE is LANE/MODE or "host".
skipped() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$SKIPS_FILE"
}

# show_log FILE: the end of a failed step's log.
show_log() {
	tail -n "${TAIL_LINES:-40}" "$1" | sed 's/^/  | /'
	echo "  full log: $1"
}

# --------------------------------------------------------------------- jobs
# job [--after ID]... NAME FUNCTION ARGS...: queues FUNCTION ARGS as a job
# (its id in last_job). It starts once the jobs it comes after have ended;
# it records verdicts with result() and skipped() and returns 0; any other
# status is a harness error, reported as a failure.
jobdir=$logdir/jobs
njobs=0
job_name=()
job_cmd=()
job_after=()
job_state=()
job_t0=()
declare -A job_of_pid=()
last_job=

job() {
	local after=""
	while [ "$1" = --after ]; do
		after+=" $2"
		shift 2
	done
	last_job=$njobs
	job_name[njobs]=$1
	shift
	job_cmd[njobs]=$(printf '%q ' "$@")
	job_after[njobs]=$after
	job_state[njobs]=queued
	mkdir -p "$(job_dir "$njobs")"
	njobs=$((njobs + 1))
}

job_dir() {
	printf '%s/%03d\n' "$jobdir" "$1"
}

job_ready() {
	local d
	for d in ${job_after[$1]}; do
		[ "${job_state[d]}" = "done" ] || return 1
	done
}

job_start() {
	local id=$1 d
	d=$(job_dir "$id")
	job_state[id]=running
	job_t0[id]=$(now_ms)
	(
		exec >"$d/out" 2>&1 </dev/null
		# shellcheck disable=SC2030 # each job has its own
		export RESULTS=$d/results SKIPS_FILE=$d/skips
		: >"$RESULTS"
		: >"$SKIPS_FILE"
		set +e
		(
			set -e
			eval "${job_cmd[id]}"
		)
		echo "$?" >"$d/status"
	) &
	job_of_pid[$!]=$id
}

# job_end ID: its output, in one piece; a harness error becomes a failure.
job_end() {
	local id=$1 d st
	d=$(job_dir "$id")
	st=$(cat "$d/status" 2>/dev/null || echo "unknown")
	if [ "$st" != 0 ]; then
		printf 'fail\t%s\t%s\n' "${job_name[id]}" \
			"harness error: the job ended with status $st (output: $d/out)" >>"$d/results"
	fi
	echo $(($(now_ms) - job_t0[id])) >"$d/ms"
	echo "--- ${job_name[id]} ($(fmt_ms "$(cat "$d/ms")"))"
	cat "$d/out"
	[ "$st" = 0 ] || echo "FAIL ${job_name[id]}: harness error: the job ended with status $st"
}

# kill_tree PID: PID and every process under it (a job: its boot's run.sh
# and QEMU too).
kill_tree() {
	local c
	for c in $(pgrep -P "$1" || true); do
		kill_tree "$c"
	done
	kill -TERM "$1" 2>/dev/null || true
}

# An interrupted run leaves no job behind.
on_signal() {
	local pid
	trap - INT TERM
	for pid in "${!job_of_pid[@]}"; do
		kill_tree "$pid"
	done
	echo "check: interrupted" >&2
	exit 130
}
trap on_signal INT TERM

# jobs_run: runs the queue, JOBS at a time, in queue order as their
# dependencies allow.
jobs_run() {
	local running=0 id pid
	while :; do
		for ((id = 0; id < njobs && running < jobs_max; id++)); do
			if [ "${job_state[id]}" != queued ] || ! job_ready "$id"; then
				continue
			fi
			job_start "$id"
			running=$((running + 1))
		done
		[ "$running" -gt 0 ] || break
		pid=
		wait -n -p pid || true
		if [ -z "$pid" ] || [ -z "${job_of_pid[$pid]:-}" ]; then
			continue
		fi
		id=${job_of_pid[$pid]}
		unset "job_of_pid[$pid]"
		job_state[id]="done"
		running=$((running - 1))
		job_end "$id"
	done
}

# ------------------------------------------------------------------- builds
src_complete() {
	local o
	for o in src/vfio_main src/group src/container src/iova_bitmap; do
		[ -f "$o.c" ] || return 1
	done
}

# warnings LOG: the compiler's and modpost's warnings in a build log.
warnings() {
	grep -E 'WARNING: modpost:|warning:' "$1"
}

# build_ours OUT KDIR [MAKE ARGS...]: our vfio.ko against KDIR, in OUT (a
# copy of the sources; the tree stays clean).
build_ours() {
	local b=$1 kdir=$2
	shift 2
	mkdir -p "$b"
	rm -rf "$b/src" "$b/include"
	cp -a Kbuild src include "$b/"
	make -C "$kdir" "M=$b" "$@" -j"$(nproc)" modules
}

# amd64_kdir ABI: the build tree of a fetched amd64 kernel.
amd64_kdir() {
	echo "$(abi_dir amd64 "$1")/root/lib/modules/$(kver amd64 "$1")/build"
}

# ------------------------------------------------------------------- lanes
# A lane is a guest suite: a kernel, and the tests.list entries whose
# ARCHES name the lane. lane NAME QEMU_ARCH ENV_FUNCTION [FACTOR] registers
# one (FACTOR: its tests' timeouts are tests.list's times FACTOR, for a slow
# kernel; default 1);
# ENV_FUNCTION (run in the lane's first job) prints the kernel as
# KEY=VALUE lines: ABI (the name run.sh boots it by), KDIR (its build
# tree) and, where they apply, KARCH, CROSS_COMPILE, KCPPFLAGS (make
# arguments for it), REF_SYMVERS (the Module.symvers module vfio is
# abi-checked against), KMOD_SYMBOLS (Module.symvers files with the vfio
# exports tests/kmod needs), GUEST_ROOT and GUEST_KERNEL (what run.sh boots
# instead of a fetched Debian kernel); or SKIP=why, when the lane cannot
# run here. A lane that is a script printing a directory with an "env" file
# (like tests/vm/s390x-stack.sh) uses stack_env to print it.
declare -A lane_qarch=() lane_envfn=() lane_factor=()
lane() {
	lane_qarch[$1]=$2
	lane_envfn[$1]=$3
	lane_factor[$1]=${4:-1}
}

amd64_env() {
	"$harness_dir/fetch.sh" amd64 "$abi" >&2
	printf 'ABI=%s\nKDIR=%s\n' "$abi" "$(amd64_kdir "$abi")"
}

# stack_env DIR: the lane keys of a kernel directory with an "env" file
# (KDIR, ARCH, CROSS_COMPILE, KCPPFLAGS, REF_SYMVERS, KMOD_SYMBOLS,
# GUEST_ROOT, GUEST_KERNEL, ABI; without ABI, the directory's name is).
stack_env() {
	(
		set +u
		# shellcheck source=/dev/null disable=SC2153 # the env file's
		. "$1/env"
		printf 'ABI=%s\n' "${ABI:-${1##*/}}"
		printf 'KDIR=%s\nKARCH=%s\nCROSS_COMPILE=%s\nKCPPFLAGS=%s\n' "$KDIR" "${ARCH:-}" \
			"${CROSS_COMPILE:-}" "${KCPPFLAGS:-}"
		printf 'REF_SYMVERS=%s\nKMOD_SYMBOLS=%s\n' "${REF_SYMVERS:-}" "${KMOD_SYMBOLS:-}"
		printf 'GUEST_ROOT=%s\nGUEST_KERNEL=%s\n' "${GUEST_ROOT:-}" "${GUEST_KERNEL:-}"
	)
}

# s390x_env: the s390x test system of tests/vm/s390x-stack.sh, built by it
# (S390X=1, the default) or the newest one already built (S390X=auto).
s390x_env() {
	local d stack=''
	if [ "${S390X:-1}" = 1 ]; then
		stack=$("$harness_dir/s390x-stack.sh" ${S390X_ABI:+"$S390X_ABI"})
	else
		for d in $(printf '%s\n' "$VFIO_CORE_CACHE"/s390x-stack/* | sort -V -r); do
			[ -z "${S390X_ABI:-}" ] || [ "${d##*/}" = "$S390X_ABI" ] || continue
			if [ -f "$d/.done" ] && [ -f "$d/env" ]; then
				stack=$d
				break
			fi
		done
	fi
	if [ -z "$stack" ]; then
		echo "SKIP=no s390x test system built yet (S390X=1 builds it: tests/vm/s390x-stack.sh)"
		return
	fi
	stack_env "$stack" | sed '/^KMOD_SYMBOLS=/d'
	# The dependents of vfio are built from source there, beside it.
	(
		# shellcheck source=/dev/null disable=SC2153
		. "$stack/env"
		echo "KMOD_SYMBOLS=$REF_SYMVERS ${REF_SYMVERS%/stock/Module.symvers}/deps/Module.symvers"
	)
}

lane amd64 amd64 amd64_env
lane s390x s390x s390x_env

# debug_env: the debug lane's kernel, Debian's linux-source-6.1 of the
# amd64 ABI under test built with lockdep, KASAN, UBSAN, kmemleak and
# friends (tests/vm/debug-kernel.sh; cached, keyed by the source version
# and the config); the vfio modules built with it are the lane's stock.
# Its tests run DEBUG_FACTOR (default 3) times tests.list's timeouts.
debug_env() {
	local d
	d=$("$harness_dir/debug-kernel.sh" "$abi") || return 1
	stack_env "$d"
}
lane debug amd64 debug_env "${DEBUG_FACTOR:-3}"

# lane_ours_ko LANE: a vfio.ko given for the lane instead of building one.
lane_ours_ko() {
	local v
	[ "$1" = amd64 ] && v=OURS_KO || v=OURS_KO_${1^^}
	echo "${!v:-}"
}

# lane_prep LANE: the lane's kernel, our vfio.ko for it (and its
# abi-check, where the lane has a reference), the test modules and the
# guest programs; the lane's state in $RESULTS.state for its boots.
lane_prep() {
	local lane=$1 qarch=${lane_qarch[$1]} env log ko='' why='' kmods b
	local ABI='' KDIR='' KARCH='' CROSS_COMPILE='' KCPPFLAGS='' REF_SYMVERS='' KMOD_SYMBOLS=''
	local GUEST_ROOT='' GUEST_KERNEL='' SKIP=''
	# shellcheck disable=SC2031 # the job's own
	local state=${RESULTS%/*}/state mk=()
	log=$logdir/lane-$lane.log
	if ! env=$("${lane_envfn[$lane]}" 2>"$log"); then
		result fail "$lane kernel (${lane_envfn[$lane]})"
		show_log "$log"
		return 0
	fi
	local k v
	while IFS='=' read -r k v; do
		case "$k" in
		ABI | KDIR | KARCH | CROSS_COMPILE | KCPPFLAGS | REF_SYMVERS | KMOD_SYMBOLS | GUEST_ROOT | GUEST_KERNEL | SKIP)
			printf -v "$k" '%s' "$v" ;;
		esac
	done <<<"$env"
	if [ -n "$SKIP" ]; then
		result skip "$lane guest suite" "$SKIP"
		skipped "$lane" "(lane)" 0 "the whole lane" "$SKIP"
		printf 'LANE_SKIP=%q\n' "$SKIP" >"$state"
		return 0
	fi
	[ -n "$KARCH" ] && mk+=("ARCH=$KARCH")
	[ -n "$CROSS_COMPILE" ] && mk+=("CROSS_COMPILE=$CROSS_COMPILE")
	[ -n "$KCPPFLAGS" ] && mk+=("KCPPFLAGS=$KCPPFLAGS")

	ko=$(lane_ours_ko "$lane")
	if [ -n "$ko" ]; then
		echo "NOTE: testing $ko as \"ours\" on $lane"
	elif ! needs_ours && [ "$host_checks" != 1 ]; then
		why="no mode under test needs it"
	elif ! src_complete; then
		result fail "build vfio.ko ($lane $ABI)" "src/ is incomplete"
		why="our vfio.ko did not build"
	else
		b=$repo_dir/build/$lane/$ABI
		log=$logdir/build-$lane-$ABI.log
		if ! build_ours "$b" "$KDIR" "${mk[@]}" >"$log" 2>&1; then
			result fail "build vfio.ko ($lane $ABI)"
			show_log "$log"
			why="our vfio.ko did not build"
		elif warnings "$log" >/dev/null; then
			result fail "build vfio.ko ($lane $ABI)" "compiler or modpost warnings"
			warnings "$log" | sed 's/^/  | /'
			ko=$b/vfio.ko
		else
			result pass "build vfio.ko ($lane $ABI)"
			ko=$b/vfio.ko
		fi
		if [ -n "$ko" ] && [ -n "$REF_SYMVERS" ]; then
			if tests/abi-check.sh "$b/Module.symvers" "$REF_SYMVERS" >>"$log" 2>&1; then
				result pass "abi-check $lane $ABI"
			else
				result fail "abi-check $lane $ABI"
				show_log "$log"
			fi
		fi
	fi

	# The test modules: this kernel's build or none (no stale ones).
	kmods=$repo_dir/build/kmod/none
	if [ -f tests/kmod/Kbuild ]; then
		b=$repo_dir/build/kmod/$lane/$ABI
		log=$logdir/kmod-$lane-$ABI.log
		mkdir -p "$b"
		rm -f "$b"/*.c "$b"/*.h "$b"/*.ko
		cp -a tests/kmod/Kbuild tests/kmod/*.c "$b/"
		cp -a tests/kmod/*.h "$b/" 2>/dev/null || true
		if make -C "$KDIR" "M=$b" "${mk[@]}" ${KMOD_SYMBOLS:+"KBUILD_EXTRA_SYMBOLS=$KMOD_SYMBOLS"} \
			-j"$(nproc)" modules >"$log" 2>&1 && ! warnings "$log" >/dev/null; then
			result pass "build test modules ($lane $ABI)"
			kmods=$b
		else
			result fail "build test modules ($lane $ABI)"
			show_log "$log"
		fi
	fi

	log=$logdir/guest-build-$lane.log
	if build_guest "$qarch" "$repo_dir/build/guest/$lane" >"$log" 2>&1; then
		result pass "guest programs build ($lane)"
	else
		result fail "guest programs build ($lane)"
		show_log "$log"
		printf 'LANE_SKIP=\nLANE_BROKEN=%q\n' "the guest programs did not build" >"$state"
		return 0
	fi
	{
		printf 'LANE_SKIP=\nLANE_BROKEN=\n'
		printf 'ABI=%q\nGUEST_ROOT=%q\nGUEST_KERNEL=%q\n' "$ABI" "$GUEST_ROOT" "$GUEST_KERNEL"
		printf 'OURS=%q\nNO_OURS=%q\nKMODS=%q\n' "$ko" "${why:-no vfio.ko of ours}" "$kmods"
	} >"$state"
}

# lane_boot LANE MODE PREP_ID SELFTEST GRACE LABEL TEST:LIMIT...: one boot
# of the lane's kernel in MODE running the tests; SELFTEST 1: a boot of
# harness self-tests, whose verdicts must be the ones tests.list declares.
lane_boot() {
	local lane=$1 m=$2 prep=$3 self=$4 grace=$5 label=$6
	shift 6
	local state res rc st n secs why t args=() names=()
	local LANE_SKIP='' LANE_BROKEN='' ABI='' GUEST_ROOT='' GUEST_KERNEL='' OURS='' NO_OURS='' KMODS=''
	for t in "$@"; do names+=("${t%%:*}"); done
	state=$(job_dir "$prep")/state
	# shellcheck source=/dev/null # written by lane_prep
	[ -f "$state" ] && . "$state"
	if [ ! -f "$state" ] || [ -n "$LANE_BROKEN" ]; then
		for n in "${names[@]}"; do
			result fail "$n ($lane/$m)" "not run: ${LANE_BROKEN:-the $lane lane could not be prepared}"
		done
		return 0
	fi
	[ -z "$LANE_SKIP" ] || return 0
	if [ "$m" = ours ] || [ "$m" = swap ]; then
		if [ -z "$OURS" ]; then
			for n in "${names[@]}"; do
				result fail "$n ($lane/$m)" "not run: $NO_OURS"
			done
			return 0
		fi
		args+=(--ko "$OURS")
	fi
	# A slow lane (its FACTOR) gets more time for its end-of-boot checks too.
	[ "$grace" != - ] || grace=$((${END_GRACE:-60} * lane_factor[$lane]))
	args+=(--end-grace "$grace")
	res=$logdir/$lane-$m-$label
	[ "$self" = 0 ] || echo "(harness self-tests: each must end as tests.list says; their verdicts follow run.sh's)"
	rc=0
	GUEST_ROOT=$GUEST_ROOT GUEST_KERNEL=$GUEST_KERNEL HARNESS_NESTED=1 \
		"$harness_dir/run.sh" --abi "$ABI" --lane "$lane" "${args[@]}" --kmods "$KMODS" \
		--tests "$repo_dir/build/guest/$lane" --logdir "$res" "${lane_qarch[$lane]}" "$m" "$@" || rc=$?
	if [ ! -s "$res/results" ]; then
		result fail "$label ($lane/$m)" "the harness failed (run.sh status $rc)"
		return 0
	fi
	if [ "$self" = 1 ]; then
		selftest_verdicts "$lane" "$m" "$res"
		return 0
	fi
	while read -r st n _ _ secs why; do
		if [ "$n" = boot ]; then
			n="boot of $label"
		fi
		case "$st" in
		fail) why+=" [console: $res/console.log]" ;;
		pass) why=${why:+$why, }${secs}s ;;
		esac
		# run.sh has printed it
		record "$st" "$n ($lane/$m)" "$why"
	done <"$res/results"
	# run.sh writes the file only when something was skipped.
	[ -f "$res/skips" ] || return 0
	while IFS=$'\t' read -r n _ _ t why rest; do
		skipped "$lane/$m" "$n" "$t" "$why" "$rest"
	done <"$res/skips"
}

# selftest_verdicts LANE MODE LOGDIR: each self-test of the boot ended as
# tests.list says (its own verdict, or its boot's failure, has the
# expected reason), and the boot failed for no other reason.
selftest_verdicts() {
	local lane=$1 m=$2 res=$3 st n why want text bst='' bwhy='' boot_explained=0
	local -A got_st=() got_why=()
	while read -r st n _ _ _ why; do
		if [ "$n" = boot ]; then
			bst=$st bwhy=$why
		else
			got_st[$n]=$st got_why[$n]=$why
		fi
	done <"$res/results"
	while read -r n want text; do
		[ -n "${got_st[$n]+set}" ] || continue
		st=${got_st[$n]} why=${got_why[$n]}
		if [ "$st" = "$want" ] && [[ $why == *"$text"* ]]; then
			result pass "selftest $n ($lane/$m)" "ended as it must: $st${why:+: $why}"
		elif [ "$want" = fail ] && [ "$bst" = fail ] && [[ $bwhy == *"$text"* ]]; then
			boot_explained=1
			result pass "selftest $n ($lane/$m)" "its boot failed as it must: $bwhy"
		else
			result fail "selftest $n ($lane/$m)" "must end $want (\"$text\"), ended $st${why:+: $why}${bst:+; boot: $bwhy} [console: $res/console.log]"
		fi
	done < <(selftest_expectations "$lane")
	if [ "$bst" = fail ] && [ "$boot_explained" = 0 ]; then
		result fail "boot of self-tests ($lane/$m)" "$bwhy [console: $res/console.log]"
	fi
}

# ---------------------------------------------------------------- tests.list
# entries LANE: "NAME MODES LIMIT FLAGS" of the tests.list entries to run
# (FLAGS "-" for none).
entries() {
	local name arches tmodes limit flags rest
	while read -r name arches tmodes limit flags rest; do
		case "$name" in '' | '#'*) continue ;; esac
		[[ ",$arches," == *",$1,"* ]] || continue
		if [ -n "$tests_filter" ]; then
			[[ " $tests_filter " == *" $name "* ]] || continue
		elif [[ ",${flags:-}," == *",manual,"* ]]; then
			continue
		fi
		echo "$name $tmodes $limit ${flags:--}"
	done <tests/guest/tests.list
}

# selftest_expectations LANE: "NAME VERDICT TEXT" of the lane's self-tests.
selftest_expectations() {
	local name arches tmodes limit flags want text
	while read -r name arches tmodes limit flags want text; do
		case "$name" in '' | '#'*) continue ;; esac
		[[ ",$arches," == *",$1,"* && ",${flags:-}," == *",selftest,"* ]] || continue
		echo "$name ${want:-?} ${text:-}"
	done <tests/guest/tests.list
}

# flag FLAGS NAME: the value of NAME=VALUE in FLAGS ("" if none; "1" for a
# bare NAME).
flag() {
	local f
	for f in ${1//,/ }; do
		case "$f" in
		"$2") echo 1; return ;;
		"$2"=*) echo "${f#*=}"; return ;;
		esac
	done
}

# queue_lane LANE: the lane's preparation and its boots, in boot units
# (one per test and mode, or per boot=GROUP and mode); their ids in
# lane_boots[LANE MODE TEST].
declare -A lane_boots=() lane_prep_job=()
boot_specs=()
queue_lane() {
	local lane=$1 name tmodes limit flags m group key prep
	local -A unit_tests=() unit_grace=() unit_self=() unit_limit=()
	local units=()
	job "prepare the $lane lane" lane_prep "$lane"
	prep=$last_job
	lane_prep_job[$lane]=$prep
	while read -r name tmodes limit flags; do
		limit=$((limit * lane_factor[$lane]))
		for m in $modes; do
			[[ ",$tmodes," == *",$m,"* ]] || continue
			group=$(flag "$flags" boot)
			key="$m ${group:-$name}"
			if [ -z "${unit_tests[$key]+set}" ]; then
				units+=("$key")
				unit_tests[$key]=
				unit_grace[$key]=-
				unit_self[$key]=0
				unit_limit[$key]=0
			fi
			unit_tests[$key]+=" $name:$limit"
			unit_limit[$key]=$((unit_limit[$key] + limit))
			[ -z "$(flag "$flags" grace)" ] || unit_grace[$key]=$(flag "$flags" grace)
			[ -z "$(flag "$flags" selftest)" ] || unit_self[$key]=1
		done
	done < <(entries "$lane")
	for key in "${units[@]}"; do
		m=${key%% *}
		group=${key#* }
		# LIMIT|LANE|MODE|PREP|SELF|GRACE|LABEL|TESTS: sorted below
		boot_specs+=("${unit_limit[$key]}|$lane|$m|$prep|${unit_self[$key]}|${unit_grace[$key]}|$group|${unit_tests[$key]# }")
	done
}

# queue_boots: every lane's boots, the longest first (they decide when the
# run ends), each after its lane's preparation.
queue_boots() {
	local lane m prep self grace label tests t
	[ ${#boot_specs[@]} -gt 0 ] || return 0
	while IFS='|' read -r _ lane m prep self grace label tests; do
		# shellcheck disable=SC2086 # TEST:LIMIT words
		job --after "$prep" "boot $lane/$m $label" lane_boot "$lane" "$m" "$prep" "$self" "$grace" "$label" $tests
		for t in $tests; do
			lane_boots["$lane $m ${t%%:*}"]=$last_job
		done
	done < <(printf '%s\n' "${boot_specs[@]}" | sort -t '|' -k1,1nr -s)
}

# bench_smoke PREP_ID: the one-iteration smoke of `make bench`
# (tests/bench/bench.sh), so that it cannot rot: one amd64 boot swapping
# stock <-> ours, the statistics, the JSON and the plot.
bench_smoke() {
	local blog=$logdir/bench-smoke.log name="bench smoke (make bench, one iteration)"
	local LANE_SKIP='' LANE_BROKEN='' ABI='' GUEST_ROOT='' GUEST_KERNEL='' OURS='' NO_OURS='' KMODS=''
	# shellcheck source=/dev/null # written by lane_prep
	[ -f "$(job_dir "$1")/state" ] && . "$(job_dir "$1")/state"
	if [ -z "$OURS" ]; then
		result fail "$name" "not run: ${LANE_BROKEN:-${NO_OURS:-the amd64 lane could not be prepared}}"
	elif BENCH_SMOKE=1 OURS_KO=$OURS KMODS=$KMODS KABI=$ABI \
		OUT=$repo_dir/build/bench-smoke tests/bench/bench.sh >"$blog" 2>&1; then
		result pass "$name" "$blog"
	else
		result fail "$name" "see $blog"
		show_log "$blog"
	fi
}

# fuzz_compare LANE: the fuzz test's errno histograms must be the same on
# stock and on ours (same seed, same calls); a missing log is a failure.
fuzz_compare() {
	local a=$1 st=$logdir/$1-stock-fuzz/tap.log ou=$logdir/$1-ours-fuzz/tap.log
	local clog=$logdir/fuzz-compare-$1.log name="fuzz histograms: stock = ours ($1)"
	if [ ! -s "$st" ] || [ ! -s "$ou" ]; then
		result fail "$name" "no fuzz log of $([ -s "$st" ] && echo ours || echo stock) ($st, $ou)"
		return 0
	fi
	if tests/guest/fuzz_compare.sh "$st" "$ou" >"$clog" 2>&1; then
		result pass "$name"
	else
		result fail "$name"
		show_log "$clog"
	fi
	return 0
}

# ------------------------------------------------------------- host checks
# host_abi_check ABI [PREP_ID]: our vfio.ko built against ABI exports what
# the kernel's own vfio.ko exports, with the same CRCs. The amd64 lane's
# build is reused when its preparation (PREP_ID) made it for this ABI.
host_abi_check() {
	local a=$1 alog=$logdir/abi-check-amd64-$1.log name="abi-check amd64 $1" b built=0
	local OURS=''
	b=$repo_dir/build/amd64/$a
	if [ -n "${2:-}" ] && [ -f "$(job_dir "$2")/state" ]; then
		# shellcheck source=/dev/null # written by lane_prep
		. "$(job_dir "$2")/state"
		[ "$OURS" != "$b/vfio.ko" ] || built=1
	fi
	if ! src_complete; then
		result fail "$name" "src/ is incomplete"
	elif ! "$harness_dir/fetch.sh" amd64 "$a" >"$alog" 2>&1; then
		result fail "$name" "cannot fetch the kernel"
		show_log "$alog"
	elif { [ "$built" = 1 ] || build_ours "$b" "$(amd64_kdir "$a")" >>"$alog" 2>&1; } &&
		tests/abi-check.sh "$b/Module.symvers" "$(amd64_kdir "$a")/Module.symvers" >>"$alog" 2>&1; then
		result pass "$name"
	else
		result fail "$name"
		show_log "$alog"
	fi
}

host_shellcheck() {
	local shells slog
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
}

# host_tap_test SCRIPT: a host-side test whose TAP is judged as a guest
# test's is (tap_judge): the plan first, all of it, skips counted.
host_tap_test() {
	local t=$1 hlog judged verdict rc=0 causes
	hlog=$logdir/host-$(basename "$t" .sh).log
	"$t" >"$hlog" 2>&1 || rc=$?
	judged=$(tap_judge "$rc" <"$hlog")
	verdict=$(sed -n 's/^verdict //p' <<<"$judged")
	causes=$(sed -n 's/^cause //p' <<<"$judged" | paste -sd ';' | sed 's/;/; /g')
	case "$verdict" in
	pass)
		result pass "$t" "$(sed -n 's/^ran //p' <<<"$judged") ok, $(sed -n 's/^skipped //p' <<<"$judged") skipped"
		;;
	skip)
		result skip "$t" "$causes"
		skipped host "$t" 0 "(the whole test)" "$causes"
		;;
	*)
		result fail "$t" "$causes"
		grep '^not ok' "$hlog" | sed 's/^/  | /' || true
		show_log "$hlog"
		;;
	esac
	sed -n 's/^skip //p' <<<"$judged" | while IFS=$'\t' read -r n what why; do
		skipped host "$t" "$n" "$what" "$why"
	done
}

host_style() {
	local stlog=$logdir/style.log
	if tests/style.sh >"$stlog" 2>&1; then
		result pass "style: $(tail -n 1 "$stlog" | sed 's/^style: //; s/ (.*//')"
	else
		result fail "style (checkpatch --strict)"
		show_log "$stlog"
	fi
}

# host_own_code: the guide's rule 2, no run of 12+ lines identical to
# Debian's drivers/vfio (tests/own-code.sh prints each run and the longest).
host_own_code() {
	local oclog=$logdir/own-code.log
	if tests/own-code.sh >"$oclog" 2>&1; then
		result pass "own-code: $(tail -n 1 "$oclog" | sed 's/^own-code: //; s/ identical to .*//')"
	else
		result fail "own-code (runs identical to Debian's drivers/vfio)"
		show_log "$oclog"
	fi
}

# host_e2e: the end-to-end test on a real Debian 12 system
# (tests/e2e/run.sh), its TAP judged as a host test's; logs in $logdir/e2e.
host_e2e() {
	E2E_LOGDIR=$logdir/e2e host_tap_test tests/e2e/run.sh
}

# ------------------------------------------------------------------- queue
# The end-to-end test: with the whole suite (E2E=0 leaves it out), with
# TESTS=e2e, or E2E=1.  Queued first, as the longest job (two guests at
# a time while its side phases run: about two cores then, one after).
if [ -z "$tests_filter" ]; then
	e2e=${E2E:-1}
else
	e2e=${E2E:-0}
fi
if [ "$e2e" = 1 ] || [[ " $tests_filter " == *" e2e "* ]]; then
	job "tests/e2e/run.sh" host_e2e
fi
for lane in $lanes; do
	[ -n "${lane_qarch[$lane]:-}" ] || die "unknown ARCH (lane) '$lane' (${!lane_qarch[*]})"
	queue_lane "$lane"
done
queue_boots
for lane in $lanes; do
	# The comparison needs both fuzz boots of the lane.
	if [ -n "${lane_boots[$lane stock fuzz]:-}" ] && [ -n "${lane_boots[$lane ours fuzz]:-}" ]; then
		job --after "${lane_boots[$lane stock fuzz]}" --after "${lane_boots[$lane ours fuzz]}" \
			"fuzz compare $lane" fuzz_compare "$lane"
	fi
done
# With the full suite, or TESTS=bench.
if [ -n "${lane_prep_job[amd64]:-}" ] && [[ -z "$tests_filter" || " $tests_filter " == *" bench "* ]]; then
	job --after "${lane_prep_job[amd64]}" "bench smoke" bench_smoke "${lane_prep_job[amd64]}"
fi
if [ "$host_checks" = 1 ]; then
	abis=${ABIS:-$(all_abis amd64)}
	[ -n "$abis" ] || abis=$abi
	for a in $abis; do
		# The lane's ABI reuses the lane's build.
		if [ "$a" = "$abi" ] && [ -n "${lane_prep_job[amd64]:-}" ]; then
			job --after "${lane_prep_job[amd64]}" "abi-check amd64 $a" host_abi_check "$a" "${lane_prep_job[amd64]}"
		else
			job "abi-check amd64 $a" host_abi_check "$a"
		fi
	done
	job "shellcheck" host_shellcheck
	for t in tests/host/*_test.sh; do
		job "$t" host_tap_test "$t"
	done
	job "style" host_style
	job "own-code" host_own_code
fi

echo "check: $njobs jobs, $jobs_max at a time; logs in $logdir"
jobs_run

# ----------------------------------------------------------------- summary
passed=0
failed=0
skipped_tests=0
nsub=0
failures=()
unexpected=()
expected=()
# expected_why KEY: the reason tests/expected-skips gives for a skip whose
# key ("LANE/MODE TEST: WHY") matches one of its patterns; fails if none.
mapfile -t skip_rules < <(grep -v '^[[:space:]]*\(#\|$\)' "$expected_skips" 2>/dev/null || true)
expected_why() {
	local r pat
	for r in "${skip_rules[@]}"; do
		pat=${r%% | *}
		# shellcheck disable=SC2053 # the pattern is a glob
		if [[ $1 == $pat ]]; then
			echo "${r#* | }"
			return 0
		fi
	done
	return 1
}
for ((id = 0; id < njobs; id++)); do
	d=$(job_dir "$id")
	while IFS=$'\t' read -r st name why; do
		case "$st" in
		pass) passed=$((passed + 1)) ;;
		skip) skipped_tests=$((skipped_tests + 1)) ;;
		*) failed=$((failed + 1)); failures+=("$name${why:+: $why}") ;;
		esac
	done <"$d/results"
	while IFS=$'\t' read -r where test n what why; do
		[ "$n" = 0 ] || nsub=$((nsub + 1))
		key="$where $test: $why"
		label="$where $test${n:+ #$n} $what: $why"
		[ "$n" = 0 ] && label="$where $test: $why"
		if rule=$(expected_why "$key"); then
			expected+=("$label  [expected: $rule]")
		else
			unexpected+=("$label")
		fi
	done <"$d/skips"
done
echo
if [ ${#expected[@]} -gt 0 ]; then
	echo "expected skips (tests/expected-skips):"
	printf '  %s\n' "${expected[@]}"
fi
if [ ${#unexpected[@]} -gt 0 ]; then
	echo "UNEXPECTED skips (not in tests/expected-skips):"
	printf '  %s\n' "${unexpected[@]}"
	if [ "$skip_policy" = strict ]; then
		failed=$((failed + ${#unexpected[@]}))
		for s in "${unexpected[@]}"; do
			failures+=("unexpected skip: $s")
		done
	fi
fi
# Where the time went: the jobs' own durations, summed by kind.
declare -A kind_ms=() kind_n=()
for ((id = 0; id < njobs; id++)); do
	case "${job_name[id]}" in
	"boot "*) k=${job_name[id]#boot }; k="${k%%/*} boots" ;;
	"prepare the "*) k=${job_name[id]#prepare the }; k="${k% lane} preparation" ;;
	"fuzz compare "*) k="fuzz comparisons" ;;
	*) k="host checks" ;;
	esac
	kind_ms[$k]=$((${kind_ms[$k]:-0} + $(cat "$(job_dir "$id")/ms" 2>/dev/null || echo 0)))
	kind_n[$k]=$((${kind_n[$k]:-0} + 1))
done
times=
while read -r k; do
	times+="${times:+, }$k ${kind_n[$k]}: $(fmt_ms "${kind_ms[$k]}")"
done < <(printf '%s\n' "${!kind_ms[@]}" | sort)
echo "check: took $(fmt_ms $(($(now_ms) - t_start))) with JOBS=$jobs_max (job time: $times); logs in $logdir"
if [ ${#failures[@]} -gt 0 ]; then
	echo "failed:"
	printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $((skipped_tests + nsub)) skipped ($skipped_tests tests, $nsub subtests; ${#unexpected[@]} unexpected)"
[ "$failed" -eq 0 ]
