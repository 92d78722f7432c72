#!/bin/bash
# own-code.sh [DRIVERS_VFIO_DIR] - src/ is our own writing (the guide's rule 2)
#
# Fails if any run of MIN_RUN (12) or more consecutive lines of src/ or
# include/ is identical, character for character (trailing blanks aside), to
# consecutive lines of any file of Debian's drivers/vfio: by default the one
# in the linux-source-6.1 of the current amd64 ABI's version, which
# tests/vm/source.sh downloads for the suite anyway.
#
# Exempt, and only these: #include lines (genksyms needs stock's include
# set for the export CRCs), and in include/ the bodies of struct, union and
# enum definitions (ABI types that must stay token-identical). Exempt lines
# are masked on both sides, so they never match anything.
#
# Prints every run with its place on both sides, then the longest run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/vm/harness.sh"
cd "$repo_dir"

min_run=${MIN_RUN:-12}
if [ $# -gt 1 ]; then
	die "usage: own-code.sh [DRIVERS_VFIO_DIR]"
elif [ $# -eq 1 ]; then
	ref=$1
else
	ref=$("$here/vm/source.sh" current)/drivers/vfio
fi
[ -d "$ref" ] || die "no directory $ref"

mapfile -t refs < <(find "$ref" -type f -name '*.[ch]' | LC_ALL=C sort)
mapfile -t ours < <(find src include -type f -name '*.[ch]' | LC_ALL=C sort)
[ ${#refs[@]} -gt 0 ] || die "no sources in $ref"
[ ${#ours[@]} -gt 0 ] || die "no sources in src/ or include/"

# The reference files come first (marked by a line "\001REF"), then ours
# ("\001OURS"). Every window of min_run lines of a reference file is kept;
# each line of ours that lies in a window found there is covered, and
# maximal covered stretches are the runs reported.
awk -v min="$min_run" -v root="$ref/" '
function masked(line, kind) {
	sub(/[ \t\r]+$/, "", line)
	if (line ~ /^[ \t]*#[ \t]*include[ \t<"]/)
		return "\001" kind "-include-" FNR
	if (kind == "ours" && FILENAME ~ /^include\//) {
		if (intype) {
			if (line ~ /^};/)
				intype = 0
			return "\001" kind "-type-" FNR
		}
		if (line ~ /^(struct|union|enum)[ \t][A-Za-z0-9_ \t]*\{$/) {
			intype = 1
			return "\001" kind "-type-" FNR
		}
	}
	return line
}
function window(arr, i,    k, s) {
	s = arr[i]
	for (k = 1; k < min; k++)
		s = s "\n" arr[i + k]
	return s
}
function flush_ref(    i, key) {
	for (i = 1; i + min - 1 <= n; i++) {
		key = window(line, i)
		if (!(key in seen))
			seen[key] = substr(name, length(root) + 1) ":" i
	}
}
function flush_ours(    i, j, key, cov, at, start, len, where, m) {
	for (i = 1; i + min - 1 <= n; i++) {
		key = window(line, i)
		if (key in seen) {
			for (j = i; j < i + min; j++)
				cov[j] = 1
			if (!((i) in at))
				at[i] = seen[key]
		}
	}
	for (i = 1; i <= n; i++) {
		if (!(i in cov))
			continue
		start = i
		while ((i + 1) in cov)
			i++
		len = i - start + 1
		where = at[start]
		split(where, m, ":")
		printf "%s:%d-%d (%d lines) = drivers/vfio/%s:%d-%d\n", name, start, i, len, m[1], m[2], m[2] + len - 1
		runs++
		covered += len
		if (len > longest) {
			longest = len
			longest_at = sprintf("%s:%d-%d = drivers/vfio/%s:%d-%d", name, start, i, m[1], m[2], m[2] + len - 1)
		}
	}
	total += n
}
function flush() {
	if (name == "")
		return
	if (kind == "ref")
		flush_ref()
	else
		flush_ours()
	delete line
	n = 0
}
FNR == 1 {
	flush()
	name = FILENAME
	intype = 0
}
$0 == "\001REF" { kind = "ref"; next }
$0 == "\001OURS" { kind = "ours"; next }
{ line[++n] = masked($0, kind) }
END {
	flush()
	printf "own-code: %d lines of src/ and include/, %d in %d runs of %d+ lines identical to %s\n", total, covered + 0, runs + 0, min, root
	if (runs) {
		printf "own-code: longest run: %d lines, %s\n", longest, longest_at
		exit 1
	}
}
' <(printf '\001REF\n') "${refs[@]}" <(printf '\001OURS\n') "${ours[@]}"
