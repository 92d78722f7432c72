#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# dkms_test.sh [ABI...]: the DKMS packaging, with the real DKMS, into
# throw-away trees (TAP on stdout, non-zero exit on a failure).
#
#  - For every bookworm 6.1 amd64 ABI the mirror has (or the ABIs given):
#    dkms build and dkms install (no --force) against the ABI's unpacked
#    headers, into a copy (hard links) of the ABI's stock module tree, so
#    DKMS's version check runs against the real stock vfio.ko; depmod and
#    modprobe --show-depends then resolve vfio to updates/dkms/vfio.ko, and
#    after dkms remove to the stock kernel/drivers/vfio/vfio.ko again.
#  - DKMS refuses a vfio.ko whose version is not newer than the stock one.
#  - DKMS declines (BUILD_EXCLUSIVE, exit 77) a 6.12 kernel, Debian 12's
#    stock s390x kernel (no vfio), a kernel with vfio built in, another arch.
#  - scripts/vfio-core-install: with the real DKMS in a throw-away root, and
#    every path (missing dkms/headers, dry run, Secure Boot, vfio-swap exit
#    codes, idempotent re-runs, uninstall) with stub commands.
#
# Nothing is written to the machine's /lib/modules, /usr/src or
# /var/lib/dkms (checked at the end); the modules are signed with a
# throw-away key.  Needs root (dkms install insists) and the mirror or the
# cache of tests/vm/fetch.sh.  VFIO_CORE_SRC: the tree to package (default:
# this repository; it must hold scripts/vfio-core-install).  DKMS_TEST_KEEP=1
# keeps the work directory (the output of test N is in log.N).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=tests/vm/lib.sh
. "$top/tests/vm/lib.sh"

SRC_DIR=${VFIO_CORE_SRC:-$top}
TIMEOUT=${DKMS_TEST_TIMEOUT:-600}
DKMS=/usr/sbin/dkms
# The headers (and .config) of the decline tests that fetch.sh does not do.
DL=$VFIO_CORE_CACHE/dkms

n=0
failures=0

ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}

not_ok() {
	n=$((n + 1))
	failures=$((failures + 1))
	echo "not ok $n - $*"
}

skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

diag() {
	sed 's/^/#   /'
}

# assert DESC CMD...: ok if CMD (a function or command) succeeds.
assert() {
	local desc=$1
	shift
	if "$@"; then
		ok "$desc"
	else
		not_ok "$desc"
		[ ! -s "$LAST" ] || tail -n 25 "$LAST" | diag
	fi
}

# expect RC DESC CMD...: run CMD with a timeout, output in $LAST; ok if it
# exits RC.  A hang is a failure (timeout's 124) with the output's tail.
LAST=/dev/null
expect() {
	local want=$1 desc=$2 rc=0
	shift 2
	LAST=$W/log.$((n + 1))
	timeout "$TIMEOUT" "$@" >"$LAST" 2>&1 </dev/null || rc=$?
	if [ "$rc" = "$want" ]; then
		ok "$desc"
		return 0
	fi
	if [ "$rc" = 124 ]; then
		not_ok "$desc (timed out after ${TIMEOUT}s)"
	else
		not_ok "$desc (exit $rc, want $want)"
	fi
	{
		echo "\$ $*"
		tail -n 25 "$LAST"
	} | diag
	return 1
}

# output_has REGEX...: the last command's output matches every REGEX.
output_has() {
	local re
	for re in "$@"; do
		grep -Eq -- "$re" "$LAST" || return 1
	done
}

output_lacks() {
	! grep -Eq -- "$1" "$LAST"
}

file_lacks() {
	! grep -Eq -- "$2" "$1"
}

[ "$(id -u)" = 0 ] || {
	echo "1..0 # SKIP needs root (dkms install refuses to run otherwise)"
	exit 0
}
command -v "$DKMS" >/dev/null || {
	echo "1..0 # SKIP dkms is not installed"
	exit 0
}
[ -x "$SRC_DIR/scripts/vfio-core-install" ] || die "$SRC_DIR/scripts/vfio-core-install is missing"

mkdir -p "$VFIO_CORE_CACHE/tmp" "$DL"
# Next to the kernel cache, so the module trees can be hard links.
W=$(mktemp -d "$VFIO_CORE_CACHE/tmp/dkms_test.XXXXXX")
if [ -n "${DKMS_TEST_KEEP:-}" ]; then
	echo "# keeping $W (DKMS_TEST_KEEP)"
else
	trap 'rm -rf "$W"' EXIT
fi
start=$SECONDS

# A snapshot of the tree, so every test sees the same sources.
SRC=$W/tree
mkdir -p "$SRC"
cp -a "$SRC_DIR/dkms.conf" "$SRC_DIR/Kbuild" "$SRC_DIR/Makefile" "$SRC_DIR/verified-core" "$SRC_DIR/src" \
	"$SRC_DIR/include" "$SRC_DIR/scripts" "$SRC/"
NAME=$(sed -n 's/^PACKAGE_NAME="\(.*\)"$/\1/p' "$SRC/dkms.conf")
VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$SRC/dkms.conf")
if [ -z "$NAME" ] || [ -z "$VERSION" ]; then
	die "no PACKAGE_NAME/PACKAGE_VERSION in $SRC/dkms.conf"
fi
echo "# packaging $SRC_DIR: $NAME $VERSION, $(cd "$SRC" && echo src/*.c)"

# What this test must not touch.
host_state() {
	{
		find /lib/modules /var/lib/dkms /usr/src -maxdepth 4 \
			\( -path '*/vfio*' -o -path '/var/lib/dkms*' -o -path '/lib/modules/*/updates*' \) \
			-printf '%p %s %T@\n' 2>/dev/null || true
	} | sort
}
host_before=$(host_state)

# DKMS signs the modules it builds; with a throw-away key, never the
# machine's /var/lib/dkms/mok.key (read by DKMS from the environment).
export mok_signing_key=$W/mok.key mok_certificate=$W/mok.pub

# The sources as `make install` puts them in /usr/src.
"$SRC/scripts/vfio-core-install" stage "$W/usr/src/$NAME-$VERSION" >/dev/null

# modtree ROOT ABIDIR KVER: ROOT/lib/modules/KVER, the stock modules
# hard-linked from the ABI's unpacked image.
modtree() {
	local m=$2/root/lib/modules/$3 f
	mkdir -p "$1/lib/modules/$3" "$1/var/lib/dkms"
	cp -al "$m/kernel" "$1/lib/modules/$3/"
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		cp "$m/$f" "$1/lib/modules/$3/"
	done
}

# resolves ROOT KVER MODULE PATH: modprobe in ROOT loads vfio from PATH
# (relative to lib/modules/KVER), and from nowhere else.
resolves() {
	local deps
	deps=$(modprobe -d "$1" -S "$2" --show-depends "$3" 2>&1) || {
		echo "$deps" >"$LAST"
		return 1
	}
	echo "$deps" >"$LAST"
	grep -q "^insmod $1/lib/modules/$2/$4 *\$" <<<"$deps" &&
		! grep '/vfio\.ko' <<<"$deps" | grep -vq "/lib/modules/$2/$4 *\$"
}

# dk ROOT KVER ARCH KDIR ARGS...: the real DKMS, everything under ROOT (a
# program, not a function: expect runs it under timeout).
dk=$W/dk
cat >"$dk" <<EOF
#!/bin/bash
root=\$1 kv=\$2 arch=\$3 kdir=\$4
shift 4
exec "$DKMS" --dkmstree "\$root/var/lib/dkms" --sourcetree "$W/usr/src" \\
	--installtree "\$root/lib/modules" --kernelsourcedir "\$kdir" \\
	-k "\$kv" -a "\$arch" --no-depmod "\$@"
EOF
chmod +x "$dk"

# ---- every 6.1 amd64 ABI: build, install, resolve, remove ----
if [ $# -gt 0 ]; then
	abis=("$@")
else
	mapfile -t abis < <(all_abis amd64)
	[ ${#abis[@]} -gt 0 ] || die "the mirror lists no 6.1 amd64 ABI (apt-get update?)"
fi
# The plan: 12 checks per ABI, then 166 (the version check, the guards'
# declines in real DKMS builds, the kernel hook, vfio-core-install with the
# real DKMS and with stubs, its package mode).
echo "1..$((12 * ${#abis[@]} + 166))"
declare -A abi_result
for abi in "${abis[@]}"; do
	t0=$SECONDS
	kv=$(kver amd64 "$abi")
	ad=$(abi_dir amd64 "$abi")
	if ! expect 0 "$kv: fetch headers and image" "$top/tests/vm/fetch.sh" amd64 "$abi"; then
		abi_result[$abi]=FAIL
		continue
	fi
	r=$W/$abi
	kdir=$ad/root/lib/modules/$kv/build
	export sign_file=$ad/root/usr/lib/linux-kbuild-6.1/scripts/sign-file
	fails=$failures
	modtree "$r" "$ad" "$kv"
	mod=$r/var/lib/dkms/$NAME/$VERSION/$kv/x86_64/module/vfio.ko
	LAST=/dev/null
	if expect 0 "$kv: dkms build" "$dk" "$r" "$kv" x86_64 "$kdir" build "$NAME/$VERSION"; then
		assert "$kv: built vfio.ko is version $VERSION for $kv, signed" \
			test "$(modinfo -F version "$mod")|$(modinfo -F vermagic "$mod" | cut -d' ' -f1)|$(modinfo -F signer "$mod")" \
			= "$VERSION|$kv|DKMS module signing key"
		expect 0 "$kv: dkms install (no --force)" "$dk" "$r" "$kv" x86_64 "$kdir" install "$NAME/$VERSION" &&
			assert "$kv: DKMS installed into updates/dkms, stock vfio.ko kept" \
				test -f "$r/lib/modules/$kv/updates/dkms/vfio.ko" -a -f "$r/lib/modules/$kv/kernel/drivers/vfio/vfio.ko"
		expect 0 "$kv: depmod" depmod -b "$r" "$kv" || true
		assert "$kv: modprobe vfio resolves to updates/dkms/vfio.ko" \
			resolves "$r" "$kv" vfio updates/dkms/vfio.ko
		assert "$kv: modprobe vfio-pci pulls in updates/dkms/vfio.ko" \
			resolves "$r" "$kv" vfio-pci updates/dkms/vfio.ko
		expect 0 "$kv: dkms remove" "$dk" "$r" "$kv" x86_64 "$kdir" remove "$NAME/$VERSION" || true
		expect 0 "$kv: depmod after remove" depmod -b "$r" "$kv" || true
		assert "$kv: modprobe vfio resolves to the stock kernel/drivers/vfio/vfio.ko again" \
			resolves "$r" "$kv" vfio kernel/drivers/vfio/vfio.ko
		assert "$kv: nothing left in updates/ or the DKMS tree" \
			test ! -e "$r/lib/modules/$kv/updates/dkms/vfio.ko" -a ! -e "$r/var/lib/dkms/$NAME"
	fi
	if [ "$failures" = "$fails" ]; then
		abi_result[$abi]="ok ($((SECONDS - t0)) s)"
	else
		abi_result[$abi]=FAIL
	fi
	rm -rf "$r"
done

# ---- DKMS's version check is real: an older vfio.ko is refused ----
abi=${abis[-1]}
kv=$(kver amd64 "$abi")
ad=$(abi_dir amd64 "$abi")
old=$W/old
mkdir -p "$old/usr/src"
cp -a "$W/usr/src/$NAME-$VERSION" "$old/usr/src/$NAME-0.2"
sed -i 's/^PACKAGE_VERSION=.*/PACKAGE_VERSION="0.2"/' "$old/usr/src/$NAME-0.2/dkms.conf"
sed -Ei "s/^(#define[[:space:]]+DRIVER_VERSION[[:space:]]+)\"$VERSION\"/\\1\"0.2\"/;s/MODULE_VERSION\\(\"$VERSION\"\\)/MODULE_VERSION(\"0.2\")/" \
	"$old/usr/src/$NAME-0.2/src/vfio_main.c"
if cmp -s "$old/usr/src/$NAME-0.2/src/vfio_main.c" "$W/usr/src/$NAME-$VERSION/src/vfio_main.c"; then
	# the four checks below, skipped
	for what in build install refused "nothing installed"; do
		skip "$kv: DKMS refuses a vfio.ko older than the stock one: $what" \
			"no DRIVER_VERSION/MODULE_VERSION(\"$VERSION\") in src/vfio_main.c to patch"
	done
else
	modtree "$old" "$ad" "$kv"
	LAST=/dev/null
	if expect 0 "$kv: dkms build of a version 0.2 vfio.ko" \
		"$DKMS" --dkmstree "$old/var/lib/dkms" --sourcetree "$old/usr/src" --installtree "$old/lib/modules" \
		--kernelsourcedir "$ad/root/lib/modules/$kv/build" -k "$kv" -a x86_64 --no-depmod build "$NAME/0.2"; then
		# DKMS 3.0.10 exits 0 here, having installed nothing.
		expect 0 "$kv: dkms install of version 0.2 (stock is 0.3)" \
			"$DKMS" --dkmstree "$old/var/lib/dkms" --sourcetree "$old/usr/src" --installtree "$old/lib/modules" \
			--kernelsourcedir "$ad/root/lib/modules/$kv/build" -k "$kv" -a x86_64 --no-depmod install "$NAME/0.2" || true
		assert "$kv: ... refused as not newer than the stock 0.3" \
			output_has "Module version 0.2 for vfio.ko" "is not newer than what is already found in kernel $kv \(0\.3\)"
		assert "$kv: ... nothing installed" test ! -e "$old/lib/modules/$kv/updates"
	fi
fi
rm -rf "$old"

# ---- kernels DKMS must decline ----
# declined DESC KVER ARCH KDIR: dkms build exits 77 with DKMS's message.
declined() {
	local r=$W/declined
	rm -rf "$r"
	mkdir -p "$r/lib/modules/$2" "$r/var/lib/dkms"
	if expect 77 "$1: declined by DKMS (exit 77)" "$dk" "$r" "$2" "$3" "$4" build "$NAME/$VERSION"; then
		assert "$1: ... with its BUILD_EXCLUSIVE message" \
			output_has 'includes a BUILD_EXCLUSIVE directive which does not match this kernel/arch/config'
	fi
	rm -rf "$r"
}

# fetch_612: the newest 6.12 amd64 headers apt offers, unpacked (cached).
fetch_612() {
	local pkg abi ver d kb
	pkg=$(apt-cache search --names-only '^linux-headers-6\.12\.[0-9]+(\+deb[0-9]+)?-amd64$' 2>/dev/null |
		cut -d' ' -f1 | sort -V | tail -n 1)
	[ -n "$pkg" ] || return 1
	abi=${pkg#linux-headers-}
	abi=${abi%-amd64}
	d=$DL/$abi
	if [ ! -f "$d/.done" ]; then
		rm -rf "$d"
		mkdir -p "$d/deb" "$d/root"
		ver=$(apt-cache show "$pkg" | sed -n 's/^Version: //p' | sort -V | tail -n 1)
		kb=$(apt-cache show "$pkg=$ver" | sed -n 's/^Depends: .*\(linux-kbuild-6\.12[^ ,]*\).*/\1/p' | head -n 1)
		(cd "$d/deb" && apt-get download -q "$pkg=$ver" "linux-headers-$abi-common=$ver" "$kb") >&2 || return 1
		for f in "$d"/deb/*.deb; do
			dpkg -x "$f" "$d/root"
		done
		rm -rf "$d/deb"
		touch "$d/.done"
	fi
	echo "$d/root/usr/src/linux-headers-$abi-amd64"
}

t0=$SECONDS
trixie=$(apt-cache policy 2>/dev/null | grep -c 'trixie' || true)
if kdir=$(fetch_612); then
	kv=${kdir##*/linux-headers-}
	echo "# 6.12 headers: ${kdir#"$DL/"} (trixie in apt sources: $([ "$trixie" -gt 0 ] && echo yes || echo no); bookworm's linux-6.12 is Debian 13's kernel built for 12)"
	declined "$kv (6.12 has the fix)" "$kv" x86_64 "$kdir"
else
	not_ok "fetch linux-headers-6.12*-amd64 (+ -common, linux-kbuild-6.12) with apt-get download"
fi

if expect 0 "fetch Debian 12's stock s390x headers" "$top/tests/vm/fetch.sh" --headers-only s390x; then
	sd=$(tail -n 1 "$LAST")
	sabi=${sd##*/}
	skv=$(kver s390x "$sabi")
	echo "# $skv .config: $(grep -E '^(# )?CONFIG_VFIO[= ]' "$sd/root/lib/modules/$skv/build/.config" || echo 'no CONFIG_VFIO line')"
	declined "$skv (stock s390x, no vfio)" "$skv" s390x "$sd/root/lib/modules/$skv/build"
fi

# A kernel with vfio built in, and the control: the same with vfio=m gets
# past BUILD_EXCLUSIVE (and stops at the missing headers).
abi=${abis[-1]}
kv=$(kver amd64 "$abi")
ad=$(abi_dir amd64 "$abi")
fake=$W/fake-kdir
mkdir -p "$fake"
sed 's/^CONFIG_VFIO=m$/CONFIG_VFIO=y/' "$ad/root/lib/modules/$kv/build/.config" >"$fake/.config"
grep -q '^CONFIG_VFIO=y$' "$fake/.config" || die "cannot make a CONFIG_VFIO=y .config"
declined "$kv with CONFIG_VFIO=y" "$kv" x86_64 "$fake"
cp "$ad/root/lib/modules/$kv/build/.config" "$fake/.config"
mkdir -p "$W/ctl/lib/modules/$kv" "$W/ctl/var/lib/dkms"
expect 1 "$kv .config with CONFIG_VFIO=m (no headers): not declined, stops at the headers" \
	"$dk" "$W/ctl" "$kv" x86_64 "$fake" build "$NAME/$VERSION" || true
assert "... with DKMS's missing-headers message" output_has "Your kernel headers for kernel $kv cannot be found"
assert "... and no BUILD_EXCLUSIVE message" output_lacks BUILD_EXCLUSIVE
rm -rf "$W/ctl"
declined "$kv as aarch64" "$kv" aarch64 "$ad/root/lib/modules/$kv/build"
echo "# declines: $((SECONDS - t0)) s"

# ---- the guards: part of every DKMS build (scripts/vfio-core-guard) ----
t0=$SECONDS
G=$SRC/scripts/vfio-core-guard
abi=${abis[-1]}
kv=$(kver amd64 "$abi")
ad=$(abi_dir amd64 "$abi")
kdir=$ad/root/lib/modules/$kv/build
cl=$ad/root/usr/share/doc/linux-headers-$kv/changelog.Debian.gz
verified=$(sed -n 's/^version //p' "$SRC/verified-core")
echo "# verified vfio core: Debian $verified; $kv is Debian $(cat "$ad/version")"
drift_ok=()
for a in "${abis[@]}"; do
	k=$(kver amd64 "$a")
	"$G" drift "$(abi_dir amd64 "$a")/root/lib/modules/$k/build" >/dev/null 2>&1 && drift_ok+=("$k")
done
assert "drift guard: every ABI's own changelog passes (${#abis[@]} ABIs)" test ${#drift_ok[@]} = ${#abis[@]}

# How the rule classifies the real changelog's vfio entries.
LAST=$W/classes
"$G" entries --all "$cl" >"$LAST"
awk -F'\t' '$2 ~ /^6\.1\./ { printf "%-5s %-10s %s\n", $1, $2, $3 }' "$LAST" | diag
classed() {
	grep -qF -- "$1	$2	$3" "$LAST"
}
assert "drift guard: 'vfio: return -ENOTTY for unsupported device feature' (6.1.159-1) is a core change" \
	classed core 6.1.159-1 "vfio: return -ENOTTY for unsupported device feature"
assert "drift guard: 'vfio: Use GFP_KERNEL_ACCOUNT ...' (6.1.85-1) is a core change" \
	classed core 6.1.85-1 "vfio: Use GFP_KERNEL_ACCOUNT for userspace persistent allocations"
assert "drift guard: iommufd/iova_bitmap (drivers/vfio/iova_bitmap.c in 6.1) and kvm/vfio entries are core changes" \
	classed core 6.1.82-1 "iommufd/iova_bitmap: Bounds check mapped::pages access"
assert "... (kvm/vfio)" classed core 6.1.11-1 "kvm/vfio: Fix potential deadlock on vfio group_lock"
assert "drift guard: vfio/pci, vfio/type1, vfio/mdev, vfio-ap, vfio/mlx5 entries are not" \
	classed other 6.1.190-1 "vfio/pci: clear vdev->msi_perm after freeing it on init failure"
assert "... (vfio/type1)" classed other 6.1.153-1 "vfio/type1: conditional rescheduling while pinning"
assert "... (vfio/mdev)" classed other 6.1.64-1 "vfio/mdev: Fix a null-ptr-deref bug for mdev_unregister_parent()"
assert "... (vfio-ap)" classed other 6.1.147-1 "[s390x] vfio-ap: Fix no AP queue sharing allowed message written to kernel"
assert "... (vfio/mlx5)" classed other 6.1.192-1 "vfio/mlx5: Fix an unwind issue in mlx5vf_add_migration_pages()"
expect 0 "drift guard: no vfio core entry in $kv's changelog is newer than $verified" "$G" entries "$cl" &&
	assert "... (none listed)" test ! -s "$LAST"

# A changelog of a future 6.1.y: one core change, one driver change.
shadow_changelog() {
	{
		printf 'linux (6.1.999-1) bookworm-security; urgency=high\n\n'
		printf '  * New upstream stable update:\n'
		printf '    - vfio: Fix a reference leak in the core (CVE-2027-0001)\n'
		printf '    - vfio/pci: Fix a driver bug\n'
		printf '    - [x86] kvm: something else\n\n'
		printf ' -- Tester <t@example.org>  Mon, 01 Feb 2027 00:00:00 +0000\n\n'
		gzip -dc "$cl"
	} | gzip -9n >"$1"
}
mkdir -p "$W/cl"
shadow_changelog "$W/cl/changelog.Debian.gz"
expect 1 "drift guard: a changelog with a newer core change declines (exit 1)" \
	"$G" drift --changelog "$W/cl/changelog.Debian.gz" "$kdir" || true
assert "... naming the core entry and its version, not the driver one" \
	output_has "DECLINED" "6.1.999-1: vfio: Fix a reference leak in the core" && assert "..." output_lacks "vfio/pci: Fix a driver bug"
assert "... and how to accept it" output_has "echo 6.1.999-1 \| sudo tee -a /etc/vfio-core/accept-drift"
printf '# reviewed\n6.1.998-1\n' >"$W/accept"
expect 1 "drift guard: an accept file naming another version still declines" \
	env VFIO_CORE_ACCEPT_FILE="$W/accept" "$G" drift --changelog "$W/cl/changelog.Debian.gz" "$kdir" || true
echo 6.1.999-1 >>"$W/accept"
expect 0 "drift guard: accepted by a line in the accept file" \
	env VFIO_CORE_ACCEPT_FILE="$W/accept" "$G" drift --changelog "$W/cl/changelog.Debian.gz" "$kdir" &&
	assert "... says so, with the entries" output_has "accepted by the admin" "vfio: Fix a reference leak"
expect 0 "drift guard: accepted by VFIO_CORE_ACCEPT_DRIFT" \
	env VFIO_CORE_ACCEPT_DRIFT=6.1.999-1 "$G" drift --changelog "$W/cl/changelog.Debian.gz" "$kdir" || true
expect 1 "drift guard: no Debian changelog declines" \
	"$G" drift --changelog "$W/cl/none.gz" "$kdir" || true
assert "... saying so" output_has "no Debian changelog for $kv" "echo $kv \| sudo tee -a"

# The ABI guard on doctored copies of the kernel's Module.symvers.
ks=$kdir/Module.symvers
expect 0 "abi guard: the kernel's own vfio exports match themselves" "$G" abi "$ks" "$ks" || true
mapfile -t vs < <(awk -F'\t' '$3 ~ /(^|\/)vfio$/ { print $2 }' "$ks" | sort | head -n 3)
awk -F'\t' -v OFS='\t' -v a="${vs[0]}" -v b="${vs[1]}" '
	$3 ~ /(^|\/)vfio$/ && $2 == a { $1 = "0x12345678" }
	$3 ~ /(^|\/)vfio$/ && $2 == b { next }
	{ print }
	END { print "0x0badc0de", "vfio_extra_symbol", "drivers/vfio/vfio", "EXPORT_SYMBOL_GPL", "" }' \
	"$ks" >"$W/doctored.symvers"
expect 1 "abi guard: a changed CRC, a missing and an extra export decline (exit 1)" \
	"$G" abi "$W/doctored.symvers" "$ks" || true
assert "... naming each symbol" output_has "DECLINED" "${vs[0]}: kernel CRC 0x[0-9a-f]+ .*, ours 0x12345678" \
	"${vs[1]}: missing from our vfio.ko" "vfio_extra_symbol: exported by our vfio.ko only"

# The same guards inside a real DKMS build, against a copy of the
# kernel's headers: DKMS fails the build and installs nothing.
# shadow_kernel DIR: DIR/usr/src/linux-headers-KVER, the headers as a tree
# of symbolic links to the originals, but for a copy of Module.symvers;
# DIR/usr/share/doc/linux-headers-KVER/ its changelog.
shadow_kernel() {
	local h=$1/usr/src/linux-headers-$kv
	mkdir -p "$1/usr/src" "$1/usr/share/doc/linux-headers-$kv"
	cp -as "$(readlink -f "$kdir")" "$h"
	rm "$h/Module.symvers"
	cp "$kdir/Module.symvers" "$h/"
	cp "$cl" "$1/usr/share/doc/linux-headers-$kv/"
	echo "$h"
}
sh1=$(shadow_kernel "$W/shadow-abi")
awk -F'\t' -v OFS='\t' -v a="${vs[0]}" '$3 ~ /(^|\/)vfio$/ && $2 == a { $1 = "0x12345678" } { print }' \
	"$ks" >"$sh1/Module.symvers"
r=$W/guard-root
modtree "$r" "$ad" "$kv"
mod=$r/var/lib/dkms/$NAME/$VERSION/$kv/x86_64/module/vfio.ko
export sign_file=$ad/root/usr/lib/linux-kbuild-6.1/scripts/sign-file
expect 10 "DKMS + ABI guard: dkms build against a Module.symvers with another CRC for ${vs[0]} fails" \
	"$dk" "$r" "$kv" x86_64 "$sh1" build "$NAME/$VERSION" || true
mlog=$r/var/lib/dkms/$NAME/$VERSION/build/make.log
assert "... make.log: compiled, then the guard names ${vs[0]}" \
	grep -Eq "vfio-core-guard: +${vs[0]}: kernel CRC 0x[0-9a-f]+ .*, ours" "$mlog"
assert "... no vfio.ko built or installed" test ! -e "$mod" -a ! -e "$r/lib/modules/$kv/updates"
rm -rf "$r"
sh2=$(shadow_kernel "$W/shadow-drift")
shadow_changelog "$W/shadow-drift/usr/share/doc/linux-headers-$kv/changelog.Debian.gz"
modtree "$r" "$ad" "$kv"
expect 10 "DKMS + drift guard: dkms build for a kernel whose changelog has a newer vfio core change fails" \
	"$dk" "$r" "$kv" x86_64 "$sh2" build "$NAME/$VERSION" || true
assert "... make.log: the guard's entries, and no compiler run" \
	grep -q "vfio-core-guard:   6.1.999-1: vfio: Fix a reference leak" "$mlog" &&
	assert "..." file_lacks "$mlog" 'CC \[M\]'

assert "... nothing built or installed" test ! -e "$mod" -a ! -e "$r/lib/modules/$kv/updates"
expect 0 "DKMS + drift guard: accepted (VFIO_CORE_ACCEPT_FILE, passed through DKMS): builds" \
	env VFIO_CORE_ACCEPT_FILE="$W/accept" "$dk" "$r" "$kv" x86_64 "$sh2" build "$NAME/$VERSION" &&
	assert "... vfio.ko built" test -f "$mod"
rm -rf "$r"

# Why vfio-core has no AUTOINSTALL: DKMS 3.0.10's autoinstall fails on a
# kernel the module declines (dkms-project/dkms#302), and the kernel's
# hooks run under run-parts --exit-on-error.
r=$W/auto
mkdir -p "$r/lib/modules/$kv" "$r/var/lib/dkms" "$W/auto-src"
cp -a "$W/usr/src/$NAME-$VERSION" "$W/auto-src/"
echo 'AUTOINSTALL="yes"' >>"$W/auto-src/$NAME-$VERSION/dkms.conf"
fake=$W/fake-kdir
sed 's/^CONFIG_VFIO=m$/CONFIG_VFIO=y/' "$kdir/.config" >"$fake/.config"
auto=$W/auto.sh
cat >"$auto" <<AUTO
#!/bin/bash
exec "$DKMS" --dkmstree "$r/var/lib/dkms" --sourcetree "\$1" --installtree "$r/lib/modules" \\
	--kernelsourcedir "$fake" -k "$kv" -a x86_64 --no-depmod "\${@:2}"
AUTO
chmod +x "$auto"
LAST=$W/log.auto
"$auto" "$W/auto-src" add "$NAME/$VERSION" >"$LAST" 2>&1 || true
expect 11 "DKMS 3.0.10: autoinstall with AUTOINSTALL=yes fails (11) on a BUILD_EXCLUSIVE decline" \
	"$auto" "$W/auto-src" autoinstall || true
rm -rf "$r" && mkdir -p "$r/lib/modules/$kv" "$r/var/lib/dkms"
"$auto" "$W/usr/src" add "$NAME/$VERSION" >"$LAST" 2>&1 || true
expect 0 "vfio-core's dkms.conf (no AUTOINSTALL): autoinstall for that kernel succeeds, builds nothing" \
	"$auto" "$W/usr/src" autoinstall || true
rm -rf "$r" "$W/auto-src"
echo "# guards: $((SECONDS - t0)) s"

# ---- scripts/vfio-core-install with the real DKMS, in a throw-away root ----
t0=$SECONDS
I=$W/inst
B=$W/inst-bin
mkdir -p "$I/usr/src" "$I/var/lib/dkms" "$I/boot" "$B"
modtree "$I" "$ad" "$kv"
ln -s "$ad/root/lib/modules/$kv/build" "$I/lib/modules/$kv/build"
cat >"$B/dkms" <<EOF
#!/bin/bash
# The real DKMS with everything under $I.
k=
prev=
for a in "\$@"; do
	[ "\$prev" != -k ] || k=\$a
	prev=\$a
done
ks=()
[ -z "\$k" ] || ks=(--kernelsourcedir "$I/lib/modules/\$k/build")
exec $DKMS --dkmstree "$I/var/lib/dkms" --sourcetree "$I/usr/src" \\
	--installtree "$I/lib/modules" --no-depmod "\${ks[@]}" "\$@"
EOF
printf '#!/bin/bash\nexec /usr/sbin/depmod -b "%s" "$@"\n' "$I" >"$B/depmod"
cat >"$B/uname" <<EOF
#!/bin/bash
[ "\$1" != -r ] || exec echo $kv
exec /usr/bin/uname "\$@"
EOF
chmod +x "$B"/*
export mok_signing_key=$I/var/lib/dkms/mok.key mok_certificate=$I/var/lib/dkms/mok.pub
export sign_file=$ad/root/usr/lib/linux-kbuild-6.1/scripts/sign-file
inst=(env PATH="$B:/usr/bin:/bin:/usr/sbin:/sbin" VFIO_CORE_ROOT="$I" VFIO_CORE_SWAP=/nonexistent
	"$SRC/scripts/vfio-core-install")
if expect 0 "vfio-core-install install (real DKMS, $kv, vfio not loaded)" "${inst[@]}" install; then
	assert "... says no swap is needed" output_has 'vfio is not loaded: no swap needed'
	assert "... copied exactly the staged sources to /usr/src/$NAME-$VERSION" \
		diff -r "$W/usr/src/$NAME-$VERSION" "$I/usr/src/$NAME-$VERSION"
	assert "... modprobe vfio resolves to updates/dkms/vfio.ko" \
		resolves "$I" "$kv" vfio updates/dkms/vfio.ko
	expect 0 "vfio-core-install install again: nothing to do" "${inst[@]}" install &&
		assert "... no dkms add/build/install the second time" \
			output_has "already installed for $kv" "modprobe vfio on $kv finds vfio-core $VERSION"
		assert "... (none run)" output_lacks '\+ dkms (add|build|install)'
	expect 0 "vfio-core-install uninstall (real DKMS)" "${inst[@]}" uninstall || true
	assert "... says modprobe vfio finds the stock 0.3 again" output_has "modprobe vfio on $kv finds version 0\.3"
	assert "... modprobe vfio resolves to the stock vfio.ko again" \
		resolves "$I" "$kv" vfio kernel/drivers/vfio/vfio.ko
	assert "... /usr/src/$NAME-$VERSION, updates/dkms and the DKMS tree are gone" \
		test ! -e "$I/usr/src/$NAME-$VERSION" -a ! -e "$I/lib/modules/$kv/updates/dkms/vfio.ko" -a ! -e "$I/var/lib/dkms/$NAME"
fi
export mok_signing_key=$W/mok.key mok_certificate=$W/mok.pub
echo "# vfio-core-install with the real DKMS: $((SECONDS - t0)) s"

# ---- scripts/vfio-core-install with stubs ----
# Every stub logs its command line to $S/calls; the dkms stub keeps its
# state (nothing, added, built, installed) in $S/state.
S=$W/stub
R=$S/root
SK=6.1.0-57-amd64
mkdir -p "$S/bin" "$S/nodkms"
# stub NAME LINE...: $S/bin/NAME logs its arguments, then runs LINEs.
stub() {
	local f=$S/bin/$1
	shift
	{
		echo '#!/bin/bash'
		echo "echo \"\${0##*/} \$*\" >>$S/calls"
		printf '%s\n' "$@"
	} >"$f"
	chmod +x "$f"
}
stub uname "[ \"\$1\" = -r ] && cat $S/kver"
stub depmod
stub update-initramfs
stub lsinitramfs "echo usr/lib/modules/$SK/kernel/drivers/block/loop.ko" \
	"[ ! -e $S/initrd-vfio ] || echo usr/lib/modules/$SK/kernel/drivers/vfio/vfio.ko"
stub mokutil "[ \"\$1\" != --sb-state ] || cat $S/sb-state" \
	"[ \"\$1\" != --test-key ] || cat $S/test-key"
stub vfio-swap "exit \$(cat $S/swap-rc)"
stub modinfo "[ \"\$(cat $S/state 2>/dev/null)\" = installed ] && echo $VERSION || echo 0.3"
stub dkms "st=\$(cat $S/state 2>/dev/null)" \
	"case \"\$1:\$st\" in" \
	"status:added) echo '$NAME/$VERSION: added' ;;" \
	"status:built | status:installed) echo \"$NAME/$VERSION, $SK, x86_64: \$st\" ;;" \
	"add:*) echo added >$S/state ;;" \
	"build:*) rc=\$(cat $S/build-rc); [ \"\$rc\" != 0 ] || echo built >$S/state" \
	"	[ ! -e $S/make.log ] || install -D $S/make.log $R/var/lib/dkms/$NAME/$VERSION/build/make.log" \
	"	exit \"\$rc\" ;;" \
	"install:*) echo installed >$S/state ;;" \
	"remove:*) rm -f $S/state ;;" \
	"esac"
cp "$S/bin/uname" "$S/nodkms/"

# setup STATE: a fresh fake root, the dkms stub in STATE (nothing, added,
# built, installed), stock vfio 0.3 loaded, an initramfs with vfio.ko.
setup() {
	rm -rf "$R" "$S/calls" "$S/state" "$S/initrd-vfio" "$S/make.log"
	mkdir -p "$R/lib/modules/$SK/build" "$R/boot" "$R/sys/module/vfio" "$R/var/lib/dkms" "$R/usr/src"
	: >"$R/boot/initrd.img-$SK"
	echo 0.3 >"$R/sys/module/vfio/version"
	touch "$S/calls" "$S/initrd-vfio"
	echo "$SK" >"$S/kver"
	echo "SecureBoot disabled" >"$S/sb-state"
	echo "$R/var/lib/dkms/mok.pub is not enrolled" >"$S/test-key"
	echo 0 >"$S/swap-rc"
	echo 0 >"$S/build-rc"
	if [ -n "$1" ]; then
		echo "$1" >"$S/state"
		"$SRC/scripts/vfio-core-install" stage "$R/usr/src/$NAME-$VERSION" >/dev/null
	fi
}
tree_sum() {
	find "$R" -printf '%p %s %T@ %m\n' | sort | md5sum
}
# "${si[@]}" ARGS...: the script with the stubs, in the fake root.
si=(env -u mok_certificate -u mok_signing_key PATH="$S/bin:/usr/bin:/bin" VFIO_CORE_ROOT="$R" VFIO_CORE_SWAP="$S/bin/vfio-swap"
	"$SRC/scripts/vfio-core-install")
# called REGEX: some stub was called so.
called() {
	grep -Eq -- "$1" "$S/calls"
}
not_called() {
	! grep -Eq -- "$1" "$S/calls"
}
# calls_are LINE...: exactly these stub calls (uname aside), in order.
calls_are() {
	if [ "$(grep -v '^uname ' "$S/calls")" = "$(printf '%s\n' "$@")" ]; then
		return 0
	fi
	{
		echo "calls:"
		cat "$S/calls"
		echo "wanted:"
		printf '%s\n' "$@"
	} >"$LAST"
	return 1
}
# unchanged: the fake root is as it was, and no stub changed anything.
unchanged() {
	[ "$(tree_sum)" = "$before" ] &&
		not_called '^(dkms (add|build|install|remove)|depmod|update-initramfs|vfio-swap)'
}
# partial_done WANT: exactly WANT (dkms add/build/install calls) were made,
# then depmod and the swap.
partial_done() {
	[ "$(grep -Eo '^dkms (add|build|install)' "$S/calls" | xargs)" = "$1" ] &&
		called '^depmod' && called '^vfio-swap to-ours'
}
state_is() {
	[ "$(cat "$S/state" 2>/dev/null)" = "$1" ]
}

setup ""
rm -rf "$R/lib/modules/$SK/build"
expect 1 "stub: no dkms, no headers: refused" \
	env PATH="$S/nodkms:/usr/bin:/bin" VFIO_CORE_ROOT="$R" "$SRC/scripts/vfio-core-install" install || true
assert "... saying: sudo apt install dkms linux-headers-$SK" output_has "install them with: sudo apt install dkms linux-headers-$SK\$"
expect 1 "stub: no headers: refused" "${si[@]}" install || true
assert "... saying: sudo apt install linux-headers-$SK" output_has "install them with: sudo apt install linux-headers-$SK\$"

setup ""
echo 6.12.118+deb12-amd64 >"$S/kver"
mkdir -p "$R/lib/modules/6.12.118+deb12-amd64/build"
expect 1 "stub: running kernel 6.12: refused" "${si[@]}" install || true
assert "... saying vfio-core is for 6.1 kernels only (not: install headers)" \
	output_has "the running kernel 6.12.118\+deb12-amd64 is not one vfio-core is for" "6.3 and later already have the fix"
assert "... without running dkms" not_called '^dkms'

setup ""
before=$(tree_sum)
expect 0 "stub: install --dry-run" "${si[@]}" install --dry-run || true
assert "... changes nothing (fake root unchanged, only read-only commands run)" unchanged
assert "... prints every step it would take" output_has "would run: cp .*dkms.conf" \
	"would run: dkms add $NAME/$VERSION" "would run: dkms build $NAME/$VERSION -k $SK" \
	"would run: dkms install $NAME/$VERSION -k $SK" "would run: depmod -a $SK" \
	"would run: update-initramfs -u -k $SK" "would run: .*vfio-swap to-ours"

setup installed
echo "$VERSION" >"$R/sys/module/vfio/version"
before=$(tree_sum)
expect 0 "stub: uninstall --dry-run" "${si[@]}" uninstall -n || true
assert "... changes nothing" unchanged
assert "... prints every step it would take" output_has "would run: .*vfio-swap to-stock" \
	"would run: dkms remove $NAME/$VERSION --all" "would run: rm -rf .*/usr/src/$NAME-$VERSION" \
	"would run: depmod -a $SK" "would run: update-initramfs -u -k $SK"

setup ""
expect 0 "stub: install" "${si[@]}" install || true
assert "... dkms add, build, install, depmod, update-initramfs, vfio-swap to-ours, in order" \
	calls_are "dkms status -m $NAME -v $VERSION" "dkms status -m $NAME -v $VERSION" \
	"dkms add $NAME/$VERSION" "mokutil --sb-state" "dkms status -m $NAME -v $VERSION -k $SK" \
	"dkms build $NAME/$VERSION -k $SK" "dkms install $NAME/$VERSION -k $SK" \
	"depmod -a $SK" "modinfo -b $R -k $SK -F version vfio" "lsinitramfs $R/boot/initrd.img-$SK" \
	"update-initramfs -u -k $SK" "vfio-swap to-ours"
assert "... the sources are in /usr/src/$NAME-$VERSION" diff -r "$W/usr/src/$NAME-$VERSION" "$R/usr/src/$NAME-$VERSION"

# Re-running after a partial install goes on from where it stopped.
for st in added built installed; do
	setup "$st"
	expect 0 "stub: install after a partial install ($st)" "${si[@]}" install || true
	case $st in
	added) want="dkms build dkms install" ;;
	built) want="dkms install" ;;
	installed) want="" ;;
	esac
	assert "... does only what is left: ${want:-nothing} for DKMS" partial_done "$want"
done

setup built
echo "/* changed */" >>"$R/usr/src/$NAME-$VERSION/src/vfio_main.c"
expect 0 "stub: install over changed sources" "${si[@]}" install || true
assert "... removes the old build, copies the sources again, rebuilds" \
	calls_are "dkms status -m $NAME -v $VERSION" "dkms remove $NAME/$VERSION --all" \
	"dkms status -m $NAME -v $VERSION" "dkms add $NAME/$VERSION" "mokutil --sb-state" "dkms status -m $NAME -v $VERSION -k $SK" \
	"dkms build $NAME/$VERSION -k $SK" "dkms install $NAME/$VERSION -k $SK" \
	"depmod -a $SK" "modinfo -b $R -k $SK -F version vfio" "lsinitramfs $R/boot/initrd.img-$SK" \
	"update-initramfs -u -k $SK" "vfio-swap to-ours"

setup ""
rm -f "$S/initrd-vfio"
expect 0 "stub: install, initramfs without vfio" "${si[@]}" install || true
assert "... does not refresh the initramfs" not_called '^update-initramfs'
assert "... and says so" output_has "does not carry vfio: not refreshed"

setup ""
rm -rf "$R/sys/module/vfio"
expect 0 "stub: install, vfio not loaded" "${si[@]}" install || true
assert "... no swap" not_called '^vfio-swap'
assert "... and says so" output_has "vfio is not loaded: no swap needed"

setup ""
echo 3 >"$S/swap-rc"
expect 0 "stub: install, vfio-swap refuses (busy, exit 3)" "${si[@]}" install || true
assert "... says a reboot (or stopping the VMs) is needed, and why" \
	output_has "vfio-swap refused to swap now" "a module in use cannot be unloaded" "loads it at the next boot: reboot, or stop what uses"
assert "... leaves the DKMS module installed" state_is installed

setup ""
echo 1 >"$S/swap-rc"
expect 1 "stub: install, vfio-swap fails and rolls back (exit 1): error" "${si[@]}" install || true
assert "... says the stock vfio is back and vfio-core loads at the next boot" \
	output_has "put the stock vfio back" "loads at the next boot"

setup ""
echo 77 >"$S/build-rc"
expect 1 "stub: install, DKMS declines the running kernel (77): error" "${si[@]}" install || true
assert "... explains why" output_has "DKMS declined $SK" "not one vfio-core is for"
assert "... installs and swaps nothing" not_called '^(dkms install|vfio-swap)'

setup ""
echo 2 >"$S/build-rc"
expect 1 "stub: install, dkms build fails: error" "${si[@]}" install || true
assert "... points at make.log" output_has "make.log"

setup ""
stub modinfo "echo 0.3"
expect 1 "stub: install, DKMS installed nothing (version check): error, no swap" "${si[@]}" install || true
assert "... says modprobe still finds 0.3" output_has "still finds version 0.3, not $VERSION"
assert "... does not swap" not_called '^vfio-swap'
stub modinfo "[ \"\$(cat $S/state 2>/dev/null)\" = installed ] && echo $VERSION || echo 0.3"

setup ""
echo "SecureBoot enabled" >"$S/sb-state"
: >"$R/var/lib/dkms/mok.pub"
expect 3 "stub: install, Secure Boot on, DKMS key not enrolled: action needed (exit 3)" "${si[@]}" install || true
assert "... says how to enrol the key" output_has "sudo mokutil --import /var/lib/dkms/mok.pub" "MokManager" "sudo make install"
assert "... builds, installs and swaps nothing" not_called '^(dkms (build|install)|vfio-swap)'

setup ""
echo "SecureBoot enabled" >"$S/sb-state"
expect 3 "stub: install, Secure Boot on, no DKMS key yet: makes it as DKMS does, then exit 3" "${si[@]}" install || true
dkms_cert() {
	openssl x509 -inform DER -in "$R/var/lib/dkms/mok.pub" -noout -subject | grep -q "CN = DKMS module signing key"
}
assert "... with openssl: the certificate DKMS signs with" dkms_cert
assert "... and says how to enrol it, building nothing" not_called '^dkms build'
setup ""
echo "SecureBoot enabled" >"$S/sb-state"
mkdir -p "$R/etc/dkms"
echo 'mok_certificate="/var/lib/shim-signed/mok/MOK.der"' >"$R/etc/dkms/framework.conf"
expect 3 "stub: install, Secure Boot on, framework.conf names another certificate: that one is checked" \
	"${si[@]}" install || true
assert "... (mokutil --test-key of it)" called "^mokutil --test-key $R/var/lib/shim-signed/mok/MOK.der"

setup ""
mkdir -p "$R/sys/kernel/security"
echo "none [integrity] confidentiality" >"$R/sys/kernel/security/lockdown"
: >"$R/var/lib/dkms/mok.pub"
echo "$R/var/lib/dkms/mok.pub is already enrolled" >"$S/test-key"
expect 0 "stub: install, lockdown on (mokutil: SB off), key enrolled" "${si[@]}" install || true
assert "... installs and swaps" called "^vfio-swap to-ours"
assert "... having checked the key" output_has "kernel lockdown: none \[integrity\]" "is enrolled"

setup installed
echo "$VERSION" >"$R/sys/module/vfio/version"
expect 0 "stub: uninstall with vfio-core running" "${si[@]}" uninstall || true
assert "... vfio-swap to-stock, dkms remove --all, depmod, update-initramfs, in order" \
	calls_are "dkms status -m $NAME -v $VERSION" "vfio-swap to-stock" "dkms status -m $NAME -v $VERSION" \
	"dkms remove $NAME/$VERSION --all" "depmod -a $SK" "modinfo -b $R -k $SK -F version vfio" \
	"lsinitramfs $R/boot/initrd.img-$SK" "update-initramfs -u -k $SK"
assert "... removes /usr/src/$NAME-$VERSION" test ! -e "$R/usr/src/$NAME-$VERSION"

setup installed
echo "$VERSION" >"$R/sys/module/vfio/version"
echo 3 >"$S/swap-rc"
expect 0 "stub: uninstall, vfio busy" "${si[@]}" uninstall || true
assert "... removes the module and says to reboot for the stock vfio" \
	output_has "reboot to load the stock vfio"
assert "... (removed)" called "^dkms remove"

setup installed
echo "$VERSION" >"$R/sys/module/vfio/version"
echo 1 >"$S/swap-rc"
expect 1 "stub: uninstall, vfio-swap fails: error, nothing removed" "${si[@]}" uninstall || true
assert "... (nothing removed)" not_called "^dkms remove"

setup installed
expect 0 "stub: uninstall with the stock vfio running" "${si[@]}" uninstall || true
assert "... does not call vfio-swap" not_called '^vfio-swap'

# A guard's decline: the build fails, its lines are in DKMS's make.log.
guard_log() {
	{
		echo "vfio-core-guard: $1: DECLINED: the reason"
		echo "vfio-core-guard:   the entry or the symbol"
	} >"$S/make.log"
	echo 10 >"$S/build-rc"
}
setup ""
guard_log drift
expect 3 "stub: install, the drift guard declines the running kernel: action needed (exit 3)" "${si[@]}" install || true
assert "... prints the guard's lines from make.log" output_has "vfio-core-guard: drift: DECLINED: the reason" \
	"vfio-core-guard:   the entry or the symbol" "its vfio core changed"
assert "... installs and swaps nothing" not_called '^(dkms install|vfio-swap)'
setup ""
guard_log abi
expect 1 "stub: install, the ABI guard declines the running kernel: error (exit 1)" "${si[@]}" install || true
assert "... prints the guard's lines, says the ABI differs" output_has "vfio-core-guard: abi: DECLINED" "its vfio ABI differs"
assert "... installs and swaps nothing" not_called '^(dkms install|vfio-swap)'

setup ""
expect 0 "stub: install also installs the kernel hooks" "${si[@]}" install || true
assert "... in postinst.d and header_postinst.d" \
	cmp "$SRC/scripts/vfio-core-kernel-hook" "$R/etc/kernel/postinst.d/dkms-vfio-core"
assert "..." cmp "$SRC/scripts/vfio-core-kernel-hook" "$R/etc/kernel/header_postinst.d/dkms-vfio-core"
state_is installed && echo "$VERSION" >"$R/sys/module/vfio/version"
expect 0 "stub: uninstall removes them" "${si[@]}" uninstall || true
assert "..." test ! -e "$R/etc/kernel/postinst.d/dkms-vfio-core" -a ! -e "$R/etc/kernel/header_postinst.d/dkms-vfio-core"

# --package: the maintainer scripts' mode.
setup ""
"$SRC/scripts/vfio-core-install" stage "$R/usr/src/$NAME-$VERSION" >/dev/null
expect 0 "stub: install --package" "${si[@]}" install --package || true
assert "... leaves the package's sources alone and installs no hooks (the package has them)" \
	test ! -e "$R/etc/kernel/postinst.d/dkms-vfio-core"
assert "... builds, installs, swaps" partial_done "dkms add dkms build dkms install"
setup ""
"$SRC/scripts/vfio-core-install" stage "$R/usr/src/$NAME-$VERSION" >/dev/null
echo 6.12.118+deb12-amd64 >"$S/kver"
expect 0 "stub: install --package on a 6.12 host: builds for the 6.1 kernels, no error" "${si[@]}" install --package || true
assert "... says so" output_has "building for the installed kernels with headers, not for 6.12.118"
assert "... and builds for $SK" called "^dkms build $NAME/$VERSION -k $SK"
setup ""
"$SRC/scripts/vfio-core-install" stage "$R/usr/src/$NAME-$VERSION" >/dev/null
echo "SecureBoot enabled" >"$S/sb-state"
: >"$R/var/lib/dkms/mok.pub"
expect 3 "stub: install --package under Secure Boot, key not enrolled: exit 3 (the postinst reports it)" \
	"${si[@]}" install --package || true
assert "... says to enrol, then dpkg-reconfigure" output_has "mokutil --import" "sudo dpkg-reconfigure vfio-core-dkms"
setup installed
echo "$VERSION" >"$R/sys/module/vfio/version"
echo 1 >"$S/swap-rc"
expect 0 "stub: uninstall --package, the live swap fails: removed anyway, stock at the next boot" \
	"${si[@]}" uninstall --package || true
sources_kept() {
	called "^dkms remove" && test -d "$R/usr/src/$NAME-$VERSION"
}
assert "... dkms remove ran, the sources stay (dpkg removes them)" sources_kept
assert "... says the next boot loads the stock vfio" output_has "reboot to load the stock vfio"

# The kernel hook (vfio-core-install kernel).
hook=(env -u mok_certificate -u mok_signing_key PATH="$S/bin:/usr/bin:/bin" VFIO_CORE_ROOT="$R"
	"$SRC/scripts/vfio-core-kernel-hook")
setup added
expect 0 "stub: kernel $SK (after the headers): build, install, refresh its initramfs" \
	"${si[@]}" kernel "$SK" || true
assert "... in order" calls_are "dkms status -m $NAME -v $VERSION" "mokutil --sb-state" \
	"dkms status -m $NAME -v $VERSION -k $SK" "dkms build $NAME/$VERSION -k $SK" "dkms install $NAME/$VERSION -k $SK" \
	"depmod -a $SK" "modinfo -b $R -k $SK -F version vfio" "lsinitramfs $R/boot/initrd.img-$SK" \
	"update-initramfs -u -k $SK"
assert "... and no swap" not_called '^vfio-swap'
setup added
expect 0 "stub: kernel --no-initramfs $SK (after the image: initramfs-tools runs next)" \
	"${si[@]}" kernel --no-initramfs "$SK" || true
assert "... does not touch the initramfs" not_called '^(lsinitramfs|update-initramfs)'
setup added
rm -rf "$R/lib/modules/$SK/build"
expect 0 "stub: kernel $SK without headers: nothing to do yet" "${si[@]}" kernel "$SK" || true
assert "... says so" output_has "no headers for $SK yet"
setup added
guard_log drift
expect 3 "stub: kernel $SK, the drift guard declines: exit 3" "${si[@]}" kernel "$SK" || true
assert "... prints the guard's lines" output_has "vfio-core-guard: drift: DECLINED"
setup added
guard_log drift
expect 0 "stub: the hook exits 0 when the guard declines (a kernel install never fails)" \
	"${hook[@]}" "$SK" || true
assert "... says the kernel keeps its stock vfio.ko" output_has "keeps its stock vfio.ko"
setup added
guard_log abi
expect 0 "stub: the hook exits 0 when the ABI guard declines" "${hook[@]}" "$SK" || true
assert "... says so" output_has "not installed for $SK .*keeps its stock vfio.ko"
rm -rf "$R/usr/src"
expect 0 "stub: the hook exits 0 when vfio-core was removed (the hook is a conffile)" "${hook[@]}" "$SK" || true

expect 2 "stub: no command: usage (exit 2)" "${si[@]}" || true
expect 2 "stub: unknown option: usage (exit 2)" "${si[@]}" install --force || true

# ---- the machine is untouched ----
assert "the machine's /lib/modules, /usr/src and /var/lib/dkms are untouched" \
	test "$(host_state)" = "$host_before"

echo "# per ABI:"
for abi in "${abis[@]}"; do
	echo "#   $(kver amd64 "$abi"): ${abi_result[$abi]:-not run}"
done
echo "# total: $((SECONDS - start)) s"
[ "$failures" = 0 ]
