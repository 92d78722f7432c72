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
# and guest tests in mode ours, and reports which of them fail: the mutant
# is killed if any does. The guest tests are the mutant's own list (the
# tests meant to see it), else conf_device conf_group conf_mdev conf_feature
# fuzz; $MUTANT_TESTS, if set, replaces both (MUTANT_TESTS="" runs the host
# test only). fuzz is judged as make check judges it, by comparing its
# errno histogram with a stock run's (made once, kept in
# build/mutants/stock-fuzz). Exits 1 if a mutant survives.
#
# Heavy (one QEMU boot per mutant and test): run it as
#   /work/bin/cpu-slot tests/mutants.sh [NAME...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/vm/harness.sh"
cd "$repo_dir"

default_tests="conf_device conf_group conf_mdev conf_feature fuzz"
abi=${KABI:-$(current_abi amd64)}
top=$repo_dir/build/mutants

# NAME|FILE|PERL REGEX|REPLACEMENT|WHAT[|TESTS]: the regex (perl, /s) must
# match exactly once in src/FILE; TESTS: the guest tests meant to see it.
# shellcheck disable=SC2016 # ${1} is perl's
mutants=(
	'getset|vfio_main.c|return \(flags & VFIO_FEATURE_GET_SET\) != VFIO_FEATURE_GET_SET \x7c\x7c\s*\(flags & VFIO_DEVICE_FEATURE_PROBE\);|return true;|FEATURE: GET and SET together accepted without PROBE|conf_feature'
	'migset|vfio_main.c|(\[VFIO_DEVICE_FEATURE_MIGRATION\] = \{\s*\.directions = )VFIO_DEVICE_FEATURE_GET|${1}VFIO_FEATURE_GET_SET|FEATURE: MIGRATION allows SET, which stock refuses|conf_feature'
	'enotty|vfio_main.c|(if \(!device->ops->device_feature\)\s*return )-ENOTTY|${1}-EINVAL|FEATURE: a driver feature without device_feature op gives EINVAL|conf_device conf_feature'
	'arc|vfio_main.c|(\[VFIO_DEVICE_STATE_RUNNING\] = \{ )VFIO_DEVICE_STATE_RUNNING_P2P|${1}VFIO_DEVICE_STATE_STOP|migration: the arc from RUNNING skips RUNNING_P2P|conf_feature'
	'datafd|vfio_main.c|mig->data_fd = -1;|mig->data_fd = 0;|migration: data_fd not reported as -1 without a file|conf_feature'
	'noranges|vfio_main.c|if \(!ctl->num_ranges\)\s*return -EINVAL;\s*||DMA logging: start with no range accepted|conf_feature'
	'eoverflow|vfio_main.c|(report->length\)\)\s*return )-EOVERFLOW|${1}-EINVAL|DMA logging: report of a range past 2^64 gives EINVAL|conf_feature'
	'clamp|iova_bitmap.c|if \(iova \+ length - 1 > last\)\s*length = last - iova \+ 1;\s*||IOVA bitmap: the last window not clamped to the range|conf_feature'
	'irqrange|vfio_main.c|hdr->start >= num_irqs \x7c\x7c hdr->start \+ hdr->count > num_irqs|hdr->start >= num_irqs|SET_IRQS: start + count beyond the IRQs accepted|conf_device'
	'norequest|vfio_main.c|if \(device->ops->request\)\s*device->ops->request\(device, requests\+\+\);|requests++;|unregister: the driver is never asked to release the device|conf_group conf_mdev'
	'setiommu|container.c|(\x7c\x7c container->iommu_driver\)\s*return )-EINVAL|${1}-EBUSY|container: SET_IOMMU on an empty or set container gives EBUSY|conf_container'
	'unsetbusy|group.c|if \(group->container_users != 1\)\s*return -EBUSY;\s*||group: UNSET_CONTAINER with a device open accepted|conf_group'
	'mayopen|group.c|if \(group->opened_file\)\s*return -EBUSY;\s*||group: a second open of a group file accepted|conf_container'
	'nobackend|container.c|if \(!container \x7c\x7c !vfio_container_has_backend\(container\)\)|if (!container)|group: a device opens before SET_IOMMU|conf_group'
	'kvmput|kvm.c|\tput\(kvm\);|\t(void)put;|KVM: the VM reference of a device never put|kvm_ref'
	'kvmrelink|kvm.c|if \(kvm && !group->kvm\)|if (kvm)|KVM: every link of a group counted as a new user|kvm_ref'
	'setkvmlock|group.c|(if \(vfio_file_is_group\(file\)\))\s+vfio_group_set_kvm\(file->private_data, kvm\);|${1} {\n\t\tstruct vfio_group *g = file->private_data;\n\n\t\tmutex_lock(&g->group_lock);\n\t\tvfio_group_set_kvm(g, kvm);\n\t\tmutex_unlock(&g->group_lock);\n\t}|the lock-order fix undone: vfio_file_set_kvm() takes group_lock, as stock|deadlock'
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

killed=0
total=0
summary=()
for m in "${mutants[@]}"; do
	IFS='|' read -r name file re rep what tests <<<"$m"
	if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
		continue
	fi
	guest_tests=${MUTANT_TESTS-${tests:-$default_tests}}
	if [ -z "$ref_fuzz" ] && [[ " $guest_tests " == *" fuzz "* ]]; then
		ref_fuzz=$(stock_fuzz)
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
		summary+=("$(printf '%-10s SURVIVED (%s): %s' "$name" "equiv_test${guest_tests:+ $guest_tests}" "$what")")
	fi
	echo "${summary[-1]}"
done
echo
printf '%s\n' "${summary[@]}"
echo "mutants: $killed of $total killed (logs in $top)"
[ "$killed" = "$total" ]
