#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# mutants.sh [NAME...] - does the suite notice when the core changes?
#
# Each mutant below is one small change to src/ of the kind a rewrite could
# make by mistake: an errno changed, a check dropped, a direction allowed that
# stock refuses, a wrong migration arc. For each (all, or the NAMEs given)
# this builds our vfio.ko with the change for the current amd64 ABI (in
# build/mutants/NAME), runs tests/host/equiv_test.sh on the changed sources
# and the guest tests $MUTANT_TESTS (default: conf_device conf_group conf_mdev
# conf_feature fuzz) in mode ours, and reports which of them fail: the
# mutant is killed if any does. fuzz is judged as make check judges it, by
# comparing its errno histogram with a stock run's (made once, kept in
# build/mutants/stock-fuzz). MUTANT_TESTS="" runs the host test only.
# Exits 1 if a mutant survives.
#
# Heavy (one QEMU boot per mutant and test): run it as
#   /work/bin/cpu-slot tests/mutants.sh [NAME...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/vm/harness.sh"
cd "$repo_dir"

guest_tests=${MUTANT_TESTS:-conf_device conf_group conf_mdev conf_feature fuzz}
abi=${KABI:-$(current_abi amd64)}
top=$repo_dir/build/mutants

# NAME|FILE|PERL REGEX|REPLACEMENT|WHAT: the regex (perl, /s) must match
# exactly once in src/FILE.
# shellcheck disable=SC2016 # ${1} is perl's
mutants=(
	'getset|vfio_main.c|return \(flags & VFIO_FEATURE_GET_SET\) != VFIO_FEATURE_GET_SET \x7c\x7c\s*\(flags & VFIO_DEVICE_FEATURE_PROBE\);|return true;|FEATURE: GET and SET together accepted without PROBE'
	'migset|vfio_main.c|(\[VFIO_DEVICE_FEATURE_MIGRATION\] = \{\s*\.directions = )VFIO_DEVICE_FEATURE_GET|${1}VFIO_FEATURE_GET_SET|FEATURE: MIGRATION allows SET, which stock refuses'
	'enotty|vfio_main.c|(if \(!device->ops->device_feature\)\s*return )-ENOTTY|${1}-EINVAL|FEATURE: a driver feature without device_feature op gives EINVAL'
	'arc|vfio_main.c|(\[VFIO_DEVICE_STATE_RUNNING\] = \{ )VFIO_DEVICE_STATE_RUNNING_P2P|${1}VFIO_DEVICE_STATE_STOP|migration: the arc from RUNNING skips RUNNING_P2P'
	'datafd|vfio_main.c|mig->data_fd = -1;|mig->data_fd = 0;|migration: data_fd not reported as -1 without a file'
	'noranges|vfio_main.c|if \(!ctl->num_ranges\)\s*return -EINVAL;\s*||DMA logging: start with no range accepted'
	'eoverflow|vfio_main.c|(report->length\)\)\s*return )-EOVERFLOW|${1}-EINVAL|DMA logging: report of a range past 2^64 gives EINVAL'
	'clamp|iova_bitmap.c|if \(iova \+ length - 1 > last\)\s*length = last - iova \+ 1;\s*||IOVA bitmap: the last window not clamped to the range'
	'irqrange|vfio_main.c|hdr->start >= num_irqs \x7c\x7c hdr->start \+ hdr->count > num_irqs|hdr->start >= num_irqs|SET_IRQS: start + count beyond the IRQs accepted'
	'norequest|vfio_main.c|if \(device->ops->request\)\s*device->ops->request\(device, requests\+\+\);|requests++;|unregister: the driver is never asked to release the device'
)

# build_mutant NAME FILE REGEX REPLACEMENT: the sources and vfio.ko in $top/NAME
build_mutant() {
	local name=$1 file=$2 re=$3 rep=$4 dir=$top/$1 kdir n
	rm -rf "$dir"
	mkdir -p "$dir"
	cp -a Kbuild src include "$dir/"
	n=$(RE=$re perl -0ne 'my $n = () = /$ENV{RE}/sg; print $n' "$dir/src/$file")
	[ "$n" = 1 ] || die "mutant $name: the pattern matches $n times in src/$file"
	RE=$re REP=$rep perl -0pi -e 's/$ENV{RE}/"qq{$ENV{REP}}"/see' "$dir/src/$file"
	! cmp -s "src/$file" "$dir/src/$file" || die "mutant $name: no change"
	kdir=$(abi_dir amd64 "$abi")/root/lib/modules/$(kver amd64 "$abi")/build
	make -C "$kdir" "M=$dir" -j"$(nproc)" modules >"$dir/build.log" 2>&1 ||
		die "mutant $name does not build: $dir/build.log"
}

# stock_fuzz: the stock fuzz run the mutants' histograms are compared with
stock_fuzz() {
	local log=$top/stock-fuzz/amd64-stock-fuzz/tap.log
	if [ ! -s "$log" ]; then
		LOGDIR=$top/stock-fuzz ARCH=amd64 TESTS=fuzz MODES=stock tests/check.sh >/dev/null 2>&1 || true
	fi
	[ -s "$log" ] || die "no stock fuzz log at $log"
	echo "$log"
}

"$harness_dir/fetch.sh" amd64 "$abi" >/dev/null
mkdir -p "$top"
ref_fuzz=
[[ " $guest_tests " == *" fuzz "* ]] && ref_fuzz=$(stock_fuzz)

killed=0
total=0
summary=()
for m in "${mutants[@]}"; do
	IFS='|' read -r name file re rep what <<<"$m"
	if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
		continue
	fi
	total=$((total + 1))
	log "mutant $name: $what"
	build_mutant "$name" "$file" "$re" "$rep"
	by=()
	if ! EQUIV_SRC=$top/$name/src EQUIV_OUT=$top/$name/equiv tests/host/equiv_test.sh \
		>"$top/$name/equiv.log" 2>&1; then
		by+=("equiv_test")
	fi
	if [ -n "${guest_tests// /}" ]; then
		LOGDIR=$top/$name/logs OURS_KO=$top/$name/vfio.ko ARCH=amd64 \
			TESTS="$guest_tests" MODES=ours tests/check.sh >"$top/$name/check.log" 2>&1 || true
	fi
	for t in $guest_tests; do
		res=$top/$name/logs/amd64-ours-$t/results
		# Killed: the test failed, hung or crashed the guest (no result).
		if [ ! -s "$res" ] || grep -qv '^\(pass\|skip\) ' "$res"; then
			by+=("$t")
		elif [ "$t" = fuzz ] && ! tests/guest/fuzz_compare.sh "$ref_fuzz" \
			"$top/$name/logs/amd64-ours-fuzz/tap.log" >"$top/$name/fuzz-compare.log" 2>&1; then
			by+=("fuzz (histogram)")
		fi
	done
	if [ ${#by[@]} -gt 0 ]; then
		killed=$((killed + 1))
		summary+=("$(printf '%-10s killed by %s: %s' "$name" "$(IFS=,; echo "${by[*]}")" "$what")")
	else
		summary+=("$(printf '%-10s SURVIVED: %s' "$name" "$what")")
	fi
	echo "${summary[-1]}"
done
echo
printf '%s\n' "${summary[@]}"
echo "mutants: $killed of $total killed (guest tests: $guest_tests; logs in $top)"
[ "$killed" = "$total" ]
