#!/bin/bash
# abi-check.sh BUILT_SYMVERS REF_SYMVERS
#
# vfio.ko is a binary drop-in only if it exports exactly the symbols the
# kernel's own vfio.ko exports, each with the same CRC and export type.
# Compares the module vfio entries of two Module.symvers files; prints every
# difference and exits non-zero on any.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: abi-check.sh BUILT_SYMVERS REF_SYMVERS" >&2; exit 2; }
built=$1
ref=$2
for f in "$built" "$ref"; do
	[ -r "$f" ] || { echo "abi-check: cannot read $f" >&2; exit 2; }
done

# CRC, symbol and export type of every symbol that module vfio exports.
exports() {
	awk -F'\t' '$3 ~ /(^|\/)vfio$/ { print $2 "\t" $1 "\t" $4 }' "$1" | sort
}

want=$(exports "$ref")
have=$(exports "$built")
[ -n "$want" ] || { echo "abi-check: $ref has no exports of module vfio" >&2; exit 2; }

if diff_out=$(diff <(echo "$want") <(echo "$have")); then
	echo "abi-check: $(echo "$have" | wc -l) exports match $ref"
	exit 0
fi
echo "abi-check: exports of vfio differ from $ref (< reference, > built):"
echo "$diff_out" | grep '^[<>]'
exit 1
