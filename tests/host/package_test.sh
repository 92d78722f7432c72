#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# package_test.sh: `make deb` builds vfio-core-dkms_VERSION_all.deb with
# dh-dkms, lintian finds no error or warning, and the package holds what
# the install needs: exactly the DKMS sources `vfio-core-install stage`
# copies, dkms.conf, the kernel hooks as conffiles, the maintainer scripts
# that call vfio-core-install (and not DKMS's common.postinst), the admin
# tools in /usr/sbin.  Installing it for real is the end-to-end test's job
# (tests/e2e).  TAP on stdout.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

# The plan: the 9 checks below.
echo "1..9"
n=0
fail=0
check() {
	local desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$W/out" 2>&1; then
		echo "ok $n - $desc"
	else
		fail=$((fail + 1))
		echo "not ok $n - $desc"
		tail -n 20 "$W/out" | sed 's/^/#   /'
	fi
}

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' dkms.conf)
deb=build/deb/vfio-core-dkms_${version}_all.deb

same_versions() {
	local c m
	c=$(dpkg-parsechangelog -l debian/changelog -SVersion)
	m=$(sed -n 's/^#define[[:space:]]*DRIVER_VERSION[[:space:]]*"\(.*\)"$/\1/p' src/vfio_main.c)
	echo "debian/changelog $c, dkms.conf $version, DRIVER_VERSION $m"
	[ "$c" = "$version" ] && [ "$m" = "$version" ]
}
check "one version: debian/changelog = dkms.conf PACKAGE_VERSION = DRIVER_VERSION ($version)" same_versions

t0=$SECONDS
check "make deb builds $deb and lintian --fail-on error,warning passes" make deb
echo "# make deb: $((SECONDS - t0)) s"
lintian_clean() {
	lintian -I --pedantic "$deb" 2>/dev/null >"$W/lintian"
	cat "$W/lintian"
	! grep -v '^P: ' "$W/lintian"
}
check "lintian: no error, warning or info (pedantic notes only)" lintian_clean

dpkg-deb -x "$deb" "$W/root"
dpkg-deb -e "$deb" "$W/ctl"
scripts/vfio-core-install stage "$W/stage" >/dev/null
check "/usr/src/vfio-core-$version holds exactly the staged DKMS sources" \
	diff -r "$W/stage" "$W/root/usr/src/vfio-core-$version"
conffiles() {
	printf '/etc/kernel/header_postinst.d/dkms-vfio-core\n/etc/kernel/postinst.d/dkms-vfio-core\n' |
		diff - <(sort "$W/ctl/conffiles") &&
		cmp scripts/vfio-core-kernel-hook "$W/root/etc/kernel/postinst.d/dkms-vfio-core" &&
		cmp scripts/vfio-core-kernel-hook "$W/root/etc/kernel/header_postinst.d/dkms-vfio-core" &&
		test -x "$W/root/etc/kernel/postinst.d/dkms-vfio-core"
}
check "the kernel hook is installed in postinst.d and header_postinst.d, as conffiles" conffiles
# shellcheck disable=SC2016 # literal shell code in the maintainer scripts
scripts_ok() {
	grep -q '/scripts/vfio-core-install\$' "$W/ctl/postinst" &&
		grep -q '"$inst" install --package' "$W/ctl/postinst" &&
		! grep -q 'common.postinst' "$W/ctl/postinst" &&
		grep -q '"$inst" uninstall --package' "$W/ctl/prerm" &&
		grep -q 'dkms remove -m $DKMS_NAME -v $DKMS_VERSION --all' "$W/ctl/prerm"
}
check "postinst runs vfio-core-install install --package, not DKMS's common.postinst; prerm uninstalls and keeps dh_dkms's dkms remove" scripts_ok
depends() {
	dpkg-deb -f "$deb" Depends | tee /dev/stderr | grep -Eq '(^|, )dkms \(>= 3\.0\.3-4~\)'
}
check "it depends on dkms (dh_dkms: >= 3.0.3-4~ for BUILD_EXCLUSIVE_CONFIG)" depends
tools() {
	local t
	for t in vfio-swap vfio-rebind; do
		[ "$(readlink "$W/root/usr/sbin/$t")" = "../src/vfio-core-$version/scripts/$t" ] || return 1
		test -f "$W/root/usr/share/man/man8/$t.8.gz" || return 1
	done
}
check "vfio-swap and vfio-rebind in /usr/sbin, with manual pages" tools
# shellcheck disable=SC2016 # the literal dkms.conf line
no_autoinstall() {
	! grep -q '^AUTOINSTALL=' "$W/root/usr/src/vfio-core-$version/dkms.conf" &&
		grep -q '^MAKE\[0\]="make KDIR=${kernel_source_dir} dkms-build"$' "$W/root/usr/src/vfio-core-$version/dkms.conf"
}
check "dkms.conf: the guards in MAKE[0], no AUTOINSTALL (the hook installs)" no_autoinstall

[ "$fail" = 0 ]
