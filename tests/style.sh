#!/bin/bash
# style.sh [FILE...] - checkpatch --strict on the kernel sources
#
# Runs the kernel's checkpatch.pl --strict --no-tree on each FILE (default:
# src/*.[ch] include/*.h). checkpatch comes from $CHECKPATCH, else from the
# linux-source-6.1 of the current amd64 ABI's Debian version, which
# tests/vm/source.sh downloads and unpacks once into $VFIO_CORE_CACHE/src/.
# Prints every finding; fails on any ERROR, WARNING or CHECK (STYLE_STRICT=0:
# on ERROR only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/vm/harness.sh"
cd "$repo_dir"

find_checkpatch() {
	local src
	if [ -n "${CHECKPATCH:-}" ]; then
		echo "$CHECKPATCH"
		return
	fi
	src=$("$here/vm/source.sh" current) || die "cannot fetch the current linux-source-6.1"
	echo "$src/scripts/checkpatch.pl"
}

if [ $# -gt 0 ]; then
	files=("$@")
else
	shopt -s nullglob
	files=(src/*.c src/*.h include/*.h)
	shopt -u nullglob
fi
[ ${#files[@]} -gt 0 ] || die "no files to check"

cp=$(find_checkpatch)
[ -f "$cp" ] || die "no checkpatch.pl at $cp"

errors=0
warnings=0
checks=0
for f in "${files[@]}"; do
	out=$(perl "$cp" --strict --no-tree --no-summary --terse --show-types -f "$f" 2>&1 || true)
	[ -n "$out" ] || continue
	echo "$out"
	errors=$((errors + $(grep -c ': ERROR:' <<<"$out" || true)))
	warnings=$((warnings + $(grep -c ': WARNING:' <<<"$out" || true)))
	checks=$((checks + $(grep -c ': CHECK:' <<<"$out" || true)))
done
echo "style: ${#files[@]} files, $errors errors, $warnings warnings, $checks checks ($cp)"
[ "$errors" -eq 0 ] || exit 1
if [ "${STYLE_STRICT:-1}" = 1 ] && [ $((warnings + checks)) -gt 0 ]; then
	exit 1
fi
exit 0
