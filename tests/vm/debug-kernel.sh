#!/bin/bash
# debug-kernel.sh [ABI] - build the amd64 debug kernel of the debug lane
#
# Debian's amd64 kernels have no lockdep, KASAN or kmemleak, so the debug
# lane boots a kernel built here from Debian's own linux-source-6.1 of the
# version of amd64 ABI (default: the one linux-image-amd64 depends on
# today): `make tinyconfig`, plus tests/vm/debug.config (what the guests
# need, the vfio stack as Debian configures it, and lockdep, KASAN, UBSAN,
# DEBUG_LIST, DEBUG_OBJECTS, kmemleak, DEBUG_ATOMIC_SLEEP), `make
# olddefconfig`. It fails if a line of debug.config did not make it into
# the .config, or if a CONFIG_VFIO* option differs from Debian's config of
# that ABI. The vfio modules built here with the kernel are the lane's stock
# oracle; another vfio.ko (ours) is built against the build tree exactly as
# DKMS builds against a headers package:
#   make -C "$KDIR" M=DIR modules
#
# Output, in $VFIO_CORE_CACHE/debug-kernel/VERSION-KEY/ (KEY: a hash of
# debug.config and of $recipe below, so a change to either builds anew):
#   build/          the kernel build tree (make O=): KDIR for modules
#   bzImage         the image QEMU boots
#   root/lib/modules/KVER   the modules (modules_install), stock vfio.ko
#                   included: GUEST_ROOT for tests/vm/run.sh
#   env             shell assignments (sourceable): KDIR KVER ABI
#                   GUEST_ROOT GUEST_KERNEL REF_SYMVERS VERSION BUILD_SECONDS
#   build.log       the compiler output; build-seconds: the build's time,
#                   when it was a fresh one (not resumed)
# KVER is VERSION's upstream release with "-debug-amd64" (6.1.192-debug-amd64),
# ABI the label tests/vm/run.sh --abi takes for it (6.1.192-debug). Idempotent
# and safe to run concurrently (a lock; .done marks a finished build).
# Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

[ $# -le 1 ] || die "usage: debug-kernel.sh [ABI]"
abi=${1:-$(current_abi amd64)}
[[ $abi =~ ^6\.1\.0-[0-9]+$ ]] || die "'$abi' is not a 6.1 ABI (like 6.1.0-57)"
fragment=$here/debug.config

kdir_top=$("$here/fetch.sh" amd64 "$abi")
ver=$(cat "$kdir_top/version")
debian_config=$kdir_top/root/boot/config-$(kver amd64 "$abi")
[ -f "$debian_config" ] || die "no $debian_config"
# Bump when a change to this script changes what it builds.
recipe="tinyconfig+debug.config; bzImage modules; -debug-amd64; v1"
key=$({ cat "$fragment"; echo "$recipe"; } | sha256sum | cut -c1-12)
out=$VFIO_CORE_CACHE/debug-kernel/$ver-$key
label=${ver%-*}-debug
kv=$(kver amd64 "$label")

# cached: says how long the cached build took, if it was a fresh one.
cached() {
	if [ -f "$out/build-seconds" ]; then
		log "cached: $out (a fresh build, $(cat "$out/build-seconds")s)"
	else
		log "cached: $out (its build was resumed after an interruption: no fresh build time)"
	fi
	echo "$out"
	exit 0
}

[ -f "$out/.done" ] && cached
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
[ -f "$out/.done" ] && cached
src=$("$here/source.sh" --full "$ver")
build=$out/build
# A build of this key that was interrupted goes on where it stopped (kbuild
# rebuilds what is out of date); its time is then not a fresh build's.
fresh=1
[ -d "$build" ] && fresh=0
rm -rf "$out/root" "$out/bzImage" "$out/env" "$out/build-seconds"
mkdir -p "$build"
kmake=(make -C "$src" "O=$build" LOCALVERSION= -j"$(nproc)")

# config_lines FILE: its CONFIG_ settings, "# X is not set" as X=n.
config_lines() {
	sed -n -e 's/^\(CONFIG_[A-Za-z0-9_]*=.*\)$/\1/p' \
		-e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1=n/p' "$1"
}

log "configuring $kv from linux-source-6.1 $ver in $build"
{
	"${kmake[@]}" tinyconfig
	cat "$fragment" >>"$build/.config"
	printf 'CONFIG_LOCALVERSION="-debug-amd64"\n# CONFIG_LOCALVERSION_AUTO is not set\n' \
		>>"$build/.config"
	"${kmake[@]}" olddefconfig
} >"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log" >&2
	die "configuring failed, see $out/build.log"
}
# Every line of the fragment as written; an option left out of the .config
# (its dependencies unmet) counts as "is not set".
bad=$(awk -F= 'NR == FNR { got[$1] = $2; next }
	{ v = ($1 in got) ? got[$1] : "n"; if (v != $2) print "  " $0 " (got " v ")" }' \
	<(config_lines "$build/.config") <(config_lines "$fragment"))
if [ -n "$bad" ]; then
	echo "$bad" >&2
	die "these lines of $fragment did not make it into the .config (dependencies?)"
fi
bad=$(diff <(config_lines "$debian_config" | grep '^CONFIG_VFIO' | sort) \
	<(config_lines "$build/.config" | grep '^CONFIG_VFIO' | sort) || true)
if [ -n "$bad" ]; then
	printf '%s\n' "$bad" >&2
	die "the CONFIG_VFIO* options differ from Debian's $debian_config (< Debian, > ours)"
fi

log "building $kv (make -j$(nproc) bzImage modules)"
t0=$(date +%s)
{
	"${kmake[@]}" bzImage modules
	"${kmake[@]}" INSTALL_MOD_PATH="$out/root" modules_install
} >>"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log" >&2
	die "the build failed, see $out/build.log"
}
secs=$(($(date +%s) - t0))
[ "$(cat "$build/include/config/kernel.release")" = "$kv" ] ||
	die "the kernel release is $(cat "$build/include/config/kernel.release"), not $kv"
if [ "$fresh" = 1 ]; then
	echo "$secs" >"$out/build-seconds"
	log "built in ${secs}s"
else
	log "built in ${secs}s (an interrupted build resumed: not a fresh build's time)"
fi
# The modules' links back to the build tree would be dangling in the guest.
rm -f "$out/root/lib/modules/$kv"/{build,source}
cp "$build/arch/x86/boot/bzImage" "$out/bzImage"
[ -f "$out/root/lib/modules/$kv/kernel/drivers/vfio/vfio.ko" ] ||
	die "no stock vfio.ko in $out/root"

{
	printf 'KDIR=%q\n' "$build"
	printf 'KVER=%q\n' "$kv"
	printf 'ABI=%q\n' "$label"
	printf 'GUEST_ROOT=%q\n' "$out/root"
	printf 'GUEST_KERNEL=%q\n' "$out/bzImage"
	printf 'REF_SYMVERS=%q\n' "$build/Module.symvers"
	printf 'VERSION=%q\n' "$ver"
	printf 'BUILD_SECONDS=%q\n' "$secs"
	printf 'BUILD_FRESH=%q\n' "$fresh"
} >"$out/env"
touch "$out/.done"
echo "$out"
