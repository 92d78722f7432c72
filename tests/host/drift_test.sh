#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# drift_test.sh: the vfio core sources of the newest linux-source-6.1 in the
# mirror are the ones vfio-core is verified against (the file verified-core:
# a Debian version and the sha256 of each core file).  A difference fails
# with the changed files and their diff against the verified version, so
# that src/ is re-verified before a host meets the new kernel (whose
# changelog the drift guard then flags).  TAP on stdout.
#
# The sources come from tests/vm/source.sh (apt-get download of
# linux-source-6.1, cached in $VFIO_CORE_CACHE/src).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/vm/lib.sh
. "$top/tests/vm/lib.sh"

VERIFIED=${VFIO_CORE_VERIFIED:-$top/verified-core}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $*"; }

verified=$(sed -n 's/^version[[:space:]]\+\([^[:space:]]\+\)$/\1/p' "$VERIFIED")
[ -n "$verified" ] || die "$VERIFIED has no version line"
newest=${DRIFT_SOURCE_VERSION:-$(apt-cache madison linux-source-6.1 2>/dev/null |
	awk '{ print $3 }' | sort -uV | tail -n 1)}
[ -n "$newest" ] || die "apt knows no linux-source-6.1 (apt-get update?)"
echo "# verified against Debian $verified; the newest linux-source-6.1 in the mirror is $newest"
# The plan: the download, the control, the comparison.
echo "1..3"

if ! dir=$("$top/tests/vm/source.sh" "$newest" 2>&1 | tail -n 1) || [ ! -d "$dir" ]; then
	not_ok "linux-source-6.1 $newest: download and extract ($dir)"
	echo "Bail out! no linux-source-6.1 $newest"
	exit 1
fi
ok "linux-source-6.1 $newest: downloaded and extracted"

# changed_files SUMS DIR: the files SUMS lists whose sha256 in DIR differs
# (or that DIR lacks).
changed_files() {
	local sum file
	while read -r sum file; do
		if [ ! -f "$2/$file" ] || [ "$(sha256sum <"$2/$file" | cut -d' ' -f1)" != "$sum" ]; then
			echo "$file"
		fi
	done < <(grep -E '^[0-9a-f]{64}  ' "$1")
}

# The comparison can fail: a verified set with one other hash is caught.
ctl=$(mktemp)
trap 'rm -f "$ctl"' EXIT
awk '!done && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { $1 = sprintf("%064d", 0) " "; done = 1 } { print }' \
	"$VERIFIED" >"$ctl"
want=$(grep -m1 -E '^[0-9a-f]{64}  ' "$VERIFIED" | cut -c67-)
if [ "$(changed_files "$ctl" "$dir")" = "$want" ]; then
	ok "control: a verified set with another sha256 for $want is caught"
else
	not_ok "control: a verified set with another sha256 for $want is caught"
fi

mapfile -t changed < <(changed_files "$VERIFIED" "$dir")

if [ ${#changed[@]} -eq 0 ]; then
	ok "the vfio core of $newest is the verified one ($(grep -cE '^[0-9a-f]{64}  ' "$VERIFIED") files)"
	! dpkg --compare-versions "$newest" gt "$verified" ||
		echo "# $newest has the same core as $verified: verified-core's version may be raised to $newest"
else
	not_ok "the vfio core of $newest differs from the verified $verified in: ${changed[*]}"
	echo "# re-verify src/ against $newest; then record in verified-core:"
	echo "#   version $newest"
	(cd "$dir" && grep -E '^[0-9a-f]{64}  ' "$VERIFIED" | cut -c67- | xargs sha256sum) | sed 's/^/#   /'
	if old=$("$top/tests/vm/source.sh" "$verified" 2>/dev/null | tail -n 1) && [ -d "$old" ]; then
		for f in "${changed[@]}"; do
			diff -u --label "$verified/$f" --label "$newest/$f" "$old/$f" "$dir/$f" | sed 's/^/# /' || true
		done
	else
		echo "# (the verified $verified sources are no longer in the mirror: no diff)"
	fi
fi
[ "$fail" = 0 ]
