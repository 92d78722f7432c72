#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# equiv_test.sh [DRIVERS_VFIO_DIR] - the pure parts of our vfio core give the
# same answers as stock 6.1's, on every input (TAP output).
#
# Compiles, in user space against tests/host/equiv/kstub.h, the functions of
# Debian's drivers/vfio (default: the linux-source-6.1 of the current amd64
# ABI, which tests/vm/source.sh fetches for the suite anyway) and of src/
# that need no device: the migration state machine, the SET_IRQS header
# check, the info capability chain helpers and the whole IOVA bitmap
# iterator. tests/host/equiv/equiv.c runs both on the same inputs and
# compares everything they return, write or pin (see its header). Built
# twice: with 4 KiB pages, and with 256-byte pages so that the bitmap walk
# crosses many windows cheaply. Stock's code is read from the source at run
# time; nothing of it is kept in this repository.
# EQUIV_SRC=DIR takes ours from DIR instead of src/ (tests/mutants.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/../vm/harness.sh"
cd "$repo_dir"

if [ $# -gt 1 ]; then
	die "usage: equiv_test.sh [DRIVERS_VFIO_DIR]"
elif [ $# -eq 1 ]; then
	ref=$1
else
	ref=$("$here/../vm/source.sh" current)/drivers/vfio
fi
uapi=$ref/../../include/uapi/linux/vfio.h
for f in "$ref/vfio_main.c" "$ref/iova_bitmap.c" "$uapi"; do
	[ -f "$f" ] || die "no $f"
done

eq=$here/equiv
src=${EQUIV_SRC:-$repo_dir/src}
out=${EQUIV_OUT:-$repo_dir/build/host-equiv}
rm -rf "$out"
mkdir -p "$out/include/linux"
# The 6.1 uAPI the functions were written against, ahead of the machine's.
cp "$uapi" "$out/include/linux/vfio.h"

exports="vfio_mig_get_next_state vfio_set_irqs_validate_and_prepare
	vfio_info_cap_add vfio_info_cap_shift vfio_info_add_capability"
bitmap="iova_bitmap_alloc iova_bitmap_free iova_bitmap_for_each iova_bitmap_set"
# What our versions of the exports above use besides themselves.
ours_helpers="VFIO_MIG_NEEDS_BASE VFIO_MIG_NEEDS_P2P vfio_mig_state
	vfio_mig_states vfio_mig_state_supported vfio_mig_step
	vfio_irq_set_data_bytes"

# side PREFIX VFIO_MAIN_C NAMES IOVA_BITMAP_C PAGE_SHIFT: compile one side.
side() {
	local p=$1 main=$2 names=$3 bm=$4 ps=$5 n defs=()
	for n in $exports $bitmap; do
		defs+=("-D$n=$p$n")
	done
	{
		echo '#include "kstub.h"'
		awk -v names="$names" -f "$eq/extract.awk" "$main"
	} >"$out/$p$ps-main.c"
	gcc -O2 -Wall -Werror -DKSTUB_PAGE_SHIFT="$ps" -I "$eq" -I "$out/include" \
		-I "$eq/include" "${defs[@]}" -c -o "$out/$p$ps-main.o" "$out/$p$ps-main.c"
	gcc -O2 -Wall -Werror -DKSTUB_PAGE_SHIFT="$ps" -I "$out/include" \
		-I "$eq/include" "${defs[@]}" -c -o "$out/$p$ps-bitmap.o" "$bm"
}

trap 'echo "Bail out! equiv_test.sh failed to build or run (line $LINENO)"' ERR
echo "1..8"
rc=0
first=1
for ps in 12 8; do
	side stock_ "$ref/vfio_main.c" "$exports" "$ref/iova_bitmap.c" "$ps"
	# shellcheck disable=SC2086 # word lists
	side ours_ "$src/vfio_main.c" "$exports $ours_helpers" "$src/iova_bitmap.c" "$ps"
	gcc -O2 -Wall -Wextra -Werror -DKSTUB_PAGE_SHIFT="$ps" -I "$eq" -I "$out/include" \
		-I "$eq/include" -o "$out/equiv-$ps" "$eq/equiv.c" \
		"$out/stock_$ps-main.o" "$out/stock_$ps-bitmap.o" \
		"$out/ours_$ps-main.o" "$out/ours_$ps-bitmap.o"
	if [ "$ps" = 12 ]; then
		"$out/equiv-$ps" "$first" || rc=1
		first=$((first + 6))
	else
		# The same bitmap walk with small pages: many windows, cheaply.
		"$out/equiv-$ps" "$first" bitmap || rc=1
	fi
done
trap - ERR
exit "$rc"
