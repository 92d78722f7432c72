#!/bin/bash
# ko-size.sh ARCH KERNEL OURS STOCK OUT [SIZE]: op 7 of `make bench`, the
# sizes of our vfio.ko and the stock one: the file and its text, data and
# bss (SIZE: the size(1) of the arch, default size). Appends rows to OUT:
#   ARCH<TAB>KERNEL<TAB>WHAT<TAB>VALUE<TAB>UNIT
set -euo pipefail
[ $# -ge 5 ] || { echo "usage: ko-size.sh ARCH KERNEL OURS STOCK OUT [SIZE]" >&2; exit 2; }
arch=$1 kv=$2 out=$5 size=${6:-size}
for m in ours stock; do
	if [ "$m" = ours ]; then f=$3; else f=$4; fi
	printf '%s\t%s\tko_file_%s\t%s\tbytes\n' "$arch" "$kv" "$m" "$(stat -c %s "$f")" >>"$out"
	"$size" "$f" | awk -v a="$arch" -v k="$kv" -v m="$m" -v OFS='\t' 'NR == 2 {
		print a, k, "text_" m, $1, "bytes"
		print a, k, "data_" m, $2, "bytes"
		print a, k, "bss_" m, $3, "bytes" }' >>"$out"
done
