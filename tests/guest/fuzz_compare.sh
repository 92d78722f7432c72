#!/bin/bash
# fuzz_compare.sh LOG_A LOG_B
#
# Compares the errno histograms of two runs of the guest test "fuzz" (e.g.
# stock and ours, same FUZZ_SEED and FUZZ_CALLS). A log is anything holding
# the test's "# hist KIND NAME RESULT COUNT" lines: the harness's tap.log,
# run.sh's or check.sh's output. Prints the seeds and call counts of both
# runs, then one line per (KIND NAME RESULT) whose count differs:
#   KIND NAME RESULT  COUNT_A COUNT_B
# (0 where a run has no such line). Exits 0 when the histograms are equal,
# 1 when they differ, 2 on bad usage or a log without a histogram.
set -euo pipefail

usage() {
	echo "usage: $0 LOG_A LOG_B" >&2
	exit 2
}

[ $# -eq 2 ] || usage
for f in "$1" "$2"; do
	[ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 2; }
done

# hist LOG: "KIND NAME RESULT COUNT" lines, sorted; totals as "KIND total - N".
hist() {
	sed -n 's/^.*# hist \([^ ]* [^ ]* [^ ]* [0-9]*\)$/\1/p; s/^.*# hist-total \([^ ]*\) \([0-9]*\)$/\1 total - \2/p' "$1" |
		LC_ALL=C sort -k1,3
}

# run_info LOG: the seed line and the calls line of the run.
run_info() {
	grep -o 'FUZZ_SEED=[0-9]* FUZZ_CALLS=[0-9]* FUZZ_RESET=[0-9]*' "$1" | head -n 1 || echo "(no seed line)"
	grep -o '[0-9]* of [0-9]* calls made.*' "$1" | head -n 1 || echo "(no result line)"
}

a=$(hist "$1")
b=$(hist "$2")
if [ -z "$a" ] || [ -z "$b" ]; then
	echo "$0: no histogram in $([ -z "$a" ] && echo "$1" || echo "$2")" >&2
	exit 2
fi
echo "A: $1"
run_info "$1" | sed 's/^/   /'
echo "B: $2"
run_info "$2" | sed 's/^/   /'

diffs=$(LC_ALL=C join -a 1 -a 2 -e 0 -o 0,1.2,2.2 \
	<(awk '{ print $1 "|" $2 "|" $3, $4 }' <<<"$a" | LC_ALL=C sort -k1,1) \
	<(awk '{ print $1 "|" $2 "|" $3, $4 }' <<<"$b" | LC_ALL=C sort -k1,1) |
	awk '$2 != $3 { split($1, k, "|"); printf "%-10s %-40s %-14s %10s %10s\n", k[1], k[2], k[3], $2, $3 }')
if [ -z "$diffs" ]; then
	echo "histograms equal ($(wc -l <<<"$a") lines)"
	exit 0
fi
printf '%-10s %-40s %-14s %10s %10s\n' KIND NAME RESULT A B
echo "$diffs"
echo "$(wc -l <<<"$diffs") lines differ"
exit 1
