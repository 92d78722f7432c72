#!/bin/bash
# swap: the live swap of the vfio module (scripts/vfio-swap) and the state
# tools (scripts/vfio-rebind) on a booted guest. Needs the harness's
# MODE=swap initramfs: bash, the scripts in /vfio-core/scripts, the stock
# vfio.ko where the kernel has it (what modprobe loads) and ours in
# updates/dkms/. TAP on stdout.
#
# Devices: amd64: edu and e1000e on vfio-pci (each its own IOMMU group) and
# two vfio_test_mdev mdevs. s390x: a virtio-ccw subchannel overridden to
# vfio_ccw with a vfio_ccw-io mdev, the zPCI virtio-rng-pci on vfio-pci
# (when the guest has it), and the vfio_test_mdev mdevs (when built).
#
# Cases: stock -> ours -> stock, after each step every binding and mdev
# back (sysfs, vfio-rebind save) and every device opens; refused (exit 3,
# pid named, nothing changed) while a device is held open; a target the
# kernel rejects (another kernel's vermagic) and a truncated one leave the
# stock vfio with everything bound, and so does one where a dependent
# (vfio_pci) fails to reload on the new vfio; bad inputs to vfio-rebind and
# vfio-swap give exit 2, a clear message and no change.
set -euo pipefail
trap 'echo "# swap.sh: unexpected failure at line $LINENO (exit $?)"' ERR

SCRIPTS=${VFIO_CORE_SCRIPTS:-/vfio-core/scripts}
SWAP=$SCRIPTS/vfio-swap
REBIND=$SCRIPTS/vfio-rebind
HELPER=$(dirname "$0")/swap_open
KVER=$(uname -r)
OURS_KO=/lib/modules/$KVER/updates/dkms/vfio.ko
STOCK_KO=/lib/modules/$KVER/kernel/drivers/vfio/vfio.ko
STOCK_VERSION=0.3
OURS_VERSION=1.0
U1=5a1d0ec7-5a0b-4000-8000-00000000a001
U2=5a1d0ec7-5a0b-4000-8000-00000000a002
W=/tmp/swap
mkdir -p "$W"

n=0
fails=0
ok() {
	n=$((n + 1))
	echo "ok $n - $*"
}
not_ok() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $*"
}
diag() { sed 's/^/# /'; }
# expect DESC COND...: one TAP line from a test command
expect() {
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
bail() {
	not_ok "$*"
	echo "Bail out! $*"
	exit 1
}

# run CMD...: RC and OUT (stdout and stderr) of a command
RC=0
OUT=
run() {
	RC=0
	OUT=$("$@" 2>&1) || RC=$?
}
show() { printf '%s\n' "$OUT" | diag; }

uptime_s() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }'; }

vfio_version() {
	if [ -r /sys/module/vfio/version ]; then cat /sys/module/vfio/version; else echo none; fi
}
link_name() {
	local t
	t=$(readlink "$1" 2>/dev/null) || return 0
	echo "${t##*/}"
}
attr() { cat "$1" 2>/dev/null || true; }

# find_pci VENDOR DEVICE: the address of the first such PCI device
find_pci() {
	local d
	for d in /sys/bus/pci/devices/*; do
		[ -e "$d/vendor" ] || continue
		if [ "$(attr "$d/vendor")" = "$1" ] && [ "$(attr "$d/device")" = "$2" ]; then
			echo "${d##*/}"
			return 0
		fi
	done
	return 0
}

# ------------------------------------------------------------ setup

# What a host has and the bare guest lacks: bash's process substitution
# needs /dev/fd; vfio-rebind records the host's identity.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
echo 5a1d0ec75a0b40008000000000c0ffee >/etc/machine-id
PCI=()
SCH=
case "${ARCH:-amd64}" in
s390x)
	mods="vfio_pci vfio_iommu_type1 vfio_ccw"
	vrng=$(find_pci 0x1af4 0x1005)
	[ -n "$vrng" ] && PCI+=("$vrng")
	;;
*)
	mods="e1000e vfio_pci vfio_iommu_type1"
	;;
esac
if modinfo vfio_test_mdev >/dev/null 2>&1; then
	mods="$mods vfio_test_mdev"
fi

if [ ! -x "$SWAP" ] || [ ! -x /bin/bash ]; then
	echo "1..0 # SKIP no $SWAP or bash: not a MODE=swap initramfs"
	exit 0
fi
# The plan: the checks below on each architecture's guest (s390x has the
# vfio_ccw mdev).
case "${ARCH:-amd64}" in
s390x) echo "1..49" ;;
*) echo "1..48" ;;
esac
[ -f "$OURS_KO" ] || bail "our vfio.ko is in $OURS_KO"
for m in $mods; do
	run modprobe "$m"
	[ "$RC" = 0 ] || { show; bail "modprobe $m"; }
done
v=$(vfio_version)
if [ "$v" = "$STOCK_VERSION" ]; then
	ok "the guest starts on the stock vfio ($v, $(modinfo -F filename vfio))"
else
	bail "the guest starts on the stock vfio (version $v)"
fi

if [ "${ARCH:-amd64}" = amd64 ]; then
	edu=$(find_pci 0x1234 0x11e8)
	nic=$(find_pci 0x8086 0x10d3)
	if [ -z "$edu" ] || [ -z "$nic" ]; then
		bail "found edu (${edu:-none}) and e1000e (${nic:-none})"
	fi
	PCI=("$edu" "$nic")
	bad_pci=0000:ff:1f.7
else
	bad_pci=0001:ff:1f.7
fi
for a in "${PCI[@]}"; do
	was=$(link_name "/sys/bus/pci/devices/$a/driver")
	run "$REBIND" bind "$a"
	if [ "$RC" = 0 ] && [ "$(link_name "/sys/bus/pci/devices/$a/driver")" = vfio-pci ]; then
		ok "vfio-rebind bind $a (was ${was:-unbound}, group $(link_name "/sys/bus/pci/devices/$a/iommu_group"))"
	else
		show
		bail "vfio-rebind bind $a (exit $RC)"
	fi
done

if [ "${ARCH:-amd64}" = s390x ]; then
	# The first I/O subchannel with a device (virtio-ccw), to vfio_ccw.
	for d in /sys/bus/css/devices/*; do
		[ "$(link_name "$d/driver")" = io_subchannel ] || continue
		[ "$(attr "$d/type")" = 0 ] || continue
		SCH=${d##*/}
		break
	done
	[ -n "$SCH" ] || bail "found an I/O subchannel for vfio_ccw"
	d=/sys/bus/css/devices/$SCH
	{
		echo vfio_ccw >"$d/driver_override" &&
			echo "$SCH" >/sys/bus/css/drivers/io_subchannel/unbind &&
			echo "$SCH" >/sys/bus/css/drivers_probe
	} 2>"$W/err" || true
	if [ "$(link_name "$d/driver")" = vfio_ccw ]; then
		ok "subchannel $SCH overridden to vfio_ccw"
	else
		diag <"$W/err"
		bail "subchannel $SCH overridden to vfio_ccw (driver $(link_name "$d/driver"))"
	fi
	U0=5a1d0ec7-5a0b-4000-8000-00000000cc01
	if echo "$U0" >"$d/mdev_supported_types/vfio_ccw-io/create"; then
		ok "vfio_ccw-io mdev $U0 on $SCH"
	else
		bail "vfio_ccw-io mdev $U0 on $SCH"
	fi
	[ ${#PCI[@]} -gt 0 ] ||
		ok "vfio-pci part # SKIP no zPCI virtio-rng-pci (1af4:1005) in this guest"
fi
MDEVS=()
[ -n "$SCH" ] && MDEVS+=("$U0")
if [ -d /sys/class/mdev_bus/vfio_test_mdev ]; then
	for u in "$U1" "$U2"; do
		t=$(echo /sys/class/mdev_bus/vfio_test_mdev/mdev_supported_types/*/create)
		echo "$u" >"$t" || bail "create test mdev $u"
		MDEVS+=("$u")
	done
	ok "two vfio_test_mdev mdevs ($U1, $U2)"
fi
DEVS=("${PCI[@]}" "${MDEVS[@]}")
[ ${#DEVS[@]} -ge 2 ] || bail "at least two vfio devices to swap under (${DEVS[*]})"

# snap: what must survive a swap, from sysfs itself
snap() {
	local a d u p
	sed 's/ .*//' /proc/modules | LC_ALL=C sort | tr '\n' ' '
	echo
	for a in "${PCI[@]}"; do
		d=/sys/bus/pci/devices/$a
		echo "pci $a driver=$(link_name "$d/driver") override=$(attr "$d/driver_override")" \
			"group=$(link_name "$d/iommu_group") dev=$(ls "/dev/vfio/$(link_name "$d/iommu_group")" 2>&1)"
	done
	if [ -n "$SCH" ]; then
		d=/sys/bus/css/devices/$SCH
		echo "css $SCH driver=$(link_name "$d/driver") override=$(attr "$d/driver_override")"
	fi
	for d in /sys/bus/mdev/devices/*; do
		[ -e "$d" ] || continue
		u=${d##*/}
		p=$(dirname "$(readlink -f "$d")")
		echo "mdev $u type=$(link_name "$d/mdev_type") parent=${p##*/}" \
			"driver=$(link_name "$d/driver") group=$([ -e "$d/iommu_group" ] && echo yes)"
	done
	for p in /run/vfio-core/pci/*; do
		[ -e "$p" ] && echo "recorded ${p##*/}: $(tr '\n' ' ' <"$p")"
	done
	return 0
}

# same_snap DESC REF: sysfs as in REF
same_snap() {
	snap >"$W/now.snap"
	if cmp -s "$2" "$W/now.snap"; then
		ok "$1"
	else
		not_ok "$1"
		diff "$2" "$W/now.snap" | diag || true
	fi
}

# same_save DESC REF [vfio_version]: vfio-rebind save as REF (the vfio
# version apart, when asked)
same_save() {
	local ref=$2
	"$REBIND" save "$W/now.json" 2>/dev/null || true
	if [ -n "${3:-}" ]; then
		sed '/"vfio_version"/d' "$ref" >"$W/ref.cmp"
		sed '/"vfio_version"/d' "$W/now.json" >"$W/now.cmp"
	else
		cp "$ref" "$W/ref.cmp"
		cp "$W/now.json" "$W/now.cmp"
	fi
	if [ -s "$W/now.cmp" ] && cmp -s "$W/ref.cmp" "$W/now.cmp"; then
		ok "$1"
	else
		not_ok "$1"
		diff "$W/ref.cmp" "$W/now.cmp" | diag || true
	fi
}

opens() {
	run "$HELPER" open "${DEVS[@]}"
	if [ "$RC" = 0 ]; then
		ok "$1: every device opens (${DEVS[*]})"
	else
		not_ok "$1: every device opens (${DEVS[*]})"
		show
	fi
}

is_version() {
	local v
	v=$(vfio_version)
	if [ "$v" = "$2" ]; then
		ok "$1: /sys/module/vfio/version is $v"
	else
		not_ok "$1: /sys/module/vfio/version is $v, expected $2"
	fi
}

snap >"$W/base.snap"
run "$REBIND" save "$W/base.json"
[ "$RC" = 0 ] || { show; bail "vfio-rebind save (exit $RC)"; }
ok "baseline: $(grep -c '"address"' "$W/base.json") PCI device(s), $(grep -c '"uuid"' "$W/base.json") mdev(s) in the saved state"
opens "stock"

# ------------------------------------------------------------ bad inputs

# refused DESC RC PATTERN REF CMD...: exit RC, PATTERN in the message,
# sysfs as in REF
refused() {
	local d=$1 want=$2 pat=$3 ref=$4
	shift 4
	run "$@"
	snap >"$W/now.snap"
	if [ "$RC" = "$want" ] && printf '%s\n' "$OUT" | grep -q -- "$pat" &&
		cmp -s "$ref" "$W/now.snap"; then
		ok "$d (exit $RC: $(printf '%s\n' "$OUT" | grep -m1 -- "$pat" | cut -c1-120))"
	else
		not_ok "$d (exit $RC, expected $want and '$pat'; nothing changed)"
		show
		diff "$ref" "$W/now.snap" | diag || true
	fi
}

refused "vfio-rebind bind: unknown device address" 2 "unknown PCI device $bad_pci" \
	"$W/base.snap" "$REBIND" bind "$bad_pci"
refused "vfio-rebind bind: malformed address" 2 "is not a PCI address" \
	"$W/base.snap" "$REBIND" bind 0000:00:zz.0
refused "vfio-swap: --ko of a missing file" 2 "no such module file" \
	"$W/base.snap" "$SWAP" to-ours --ko /nonexistent/vfio.ko
refused "vfio-swap: unknown command" 2 "unknown command" \
	"$W/base.snap" "$SWAP" to-nowhere

# The restores below would have to re-create this mdev first, had they
# started acting before validating the whole file.
gone=${MDEVS[0]}
echo 1 >"/sys/bus/mdev/devices/$gone/remove" || bail "remove mdev $gone"
snap >"$W/less.snap"
first=${PCI[0]:-}
if [ -n "$first" ]; then
	sed "s/\"$first\"/\"$bad_pci\"/g" "$W/base.json" >"$W/badpci.json"
	refused "vfio-rebind restore: unknown device address in the state file" 2 \
		"unknown PCI device $bad_pci" "$W/less.snap" "$REBIND" restore "$W/badpci.json"
fi
last=${MDEVS[${#MDEVS[@]} - 1]}
sed "s/\"$last\"/\"${last%-*}-zzzz\"/" "$W/base.json" >"$W/baduuid.json"
refused "vfio-rebind restore: malformed UUID" 2 "malformed UUID" \
	"$W/less.snap" "$REBIND" restore "$W/baduuid.json"
sed 's/"machine_id": "[^"]*"/"machine_id": "0123456789abcdef0123456789abcdef"/' \
	"$W/base.json" >"$W/otherhost.json"
refused "vfio-rebind restore: state file from another host" 2 "saved on another host" \
	"$W/less.snap" "$REBIND" restore "$W/otherhost.json"
sed 's/"kernel": "[^"]*"/"kernel": "6.1.0-0-other"/' "$W/base.json" >"$W/otherkernel.json"
refused "vfio-rebind restore: state file from another kernel" 2 "saved under kernel 6.1.0-0-other" \
	"$W/less.snap" "$REBIND" restore "$W/otherkernel.json"
head -c 200 "$W/base.json" >"$W/truncated.json"
refused "vfio-rebind restore: truncated state file" 2 "" \
	"$W/less.snap" "$REBIND" restore "$W/truncated.json"
run "$REBIND" restore "$W/base.json"
[ "$RC" = 0 ] || show
same_snap "vfio-rebind restore of the saved state brings mdev $gone back" "$W/base.snap"

# ------------------------------------------------------------ busy

# hold DEV: a process holding DEV open (container, group, device); its pid
hold() {
	local tries=100 out=$W/hold-$1
	"$HELPER" hold "$1" >"$out" 2>&1 &
	HELD=$!
	while [ "$tries" -gt 0 ]; do
		grep -q '^holding' "$out" && return 0
		kill -0 "$HELD" 2>/dev/null || break
		sleep 0.2
		tries=$((tries - 1))
	done
	diag <"$out"
	bail "swap_open hold $1"
}
release() {
	kill "$@" 2>/dev/null || true
	wait "$@" 2>/dev/null || true
}

# busy TARGET SNAP VERSION DEV...: the swap to TARGET is refused while
# each DEV is held by a process of its own, and every pid is named
busy() {
	local target=$1 ref=$2 ver=$3 pids=() p missing=''
	shift 3
	for d in "$@"; do
		hold "$d"
		pids+=("$HELD")
	done
	run "$SWAP" "$target"
	for p in "${pids[@]}"; do
		printf '%s\n' "$OUT" | grep -Eq "^ +$p swap_open " || missing="$missing $p"
	done
	snap >"$W/now.snap"
	if [ "$RC" = 3 ] && [ -z "$missing" ] && cmp -s "$ref" "$W/now.snap" &&
		[ "$(vfio_version)" = "$ver" ]; then
		ok "vfio-swap $target refused while pid(s) ${pids[*]} hold $* (exit 3, pids named, nothing changed)"
	else
		not_ok "vfio-swap $target refused while pid(s) ${pids[*]} hold $* (exit $RC; pids not named:${missing:- none})"
		show
		diff "$ref" "$W/now.snap" | diag || true
	fi
	release "${pids[@]}"
}

held=("${DEVS[0]}")
for u in "${MDEVS[@]}"; do
	[ "$u" = "${DEVS[0]}" ] && continue
	held+=("$u")
	break
done
busy to-ours "$W/base.snap" "$STOCK_VERSION" "${held[@]}"

# ------------------------------------------------------------ failed loads

# rolled_back DESC: the stock vfio and everything else as at the start
rolled_back() {
	is_version "$1" "$STOCK_VERSION"
	same_snap "$1: every module, binding and mdev is back (sysfs)" "$W/base.snap"
	same_save "$1: vfio-rebind save is identical to the one before" "$W/base.json"
	opens "$1"
}

"$HELPER" modinfo "$OURS_KO" "$W/otherkernel.ko" "vermagic=0.0.0-other SMP mod_unload" ||
	bail "make a copy of vfio.ko with another kernel's vermagic"
t0=$(uptime_s)
run "$SWAP" to-ours --ko "$W/otherkernel.ko"
if [ "$RC" = 1 ] && printf '%s\n' "$OUT" | grep -q 'refused' &&
	printf '%s\n' "$OUT" | grep -q 'rolled back: previous vfio'; then
	ok "to-ours with a vfio.ko of another kernel fails and rolls back (exit 1, $(since "$t0")s)"
else
	not_ok "to-ours with a vfio.ko of another kernel fails and rolls back (exit $RC)"
fi
show
rolled_back "after the failed to-ours (vermagic)"

head -c 8192 "$OURS_KO" >"$W/truncated.ko"
run "$SWAP" to-ours --ko "$W/truncated.ko"
if [ "$RC" = 1 ] || [ "$RC" = 2 ]; then
	ok "to-ours with a truncated vfio.ko fails (exit $RC: $(printf '%s\n' "$OUT" | tail -n 1 | cut -c1-120))"
else
	not_ok "to-ours with a truncated vfio.ko fails (exit $RC)"
	show
fi
rolled_back "after the failed to-ours (truncated)"

# A dependent that fails to load once on the new vfio (a modprobe.d
# install rule): loading it again on the old one, in the rollback, works.
mkdir -p /etc/modprobe.d
# shellcheck disable=SC2016 # modprobe expands $CMDLINE_OPTS
printf '%s\n' 'install vfio_pci if [ -e /tmp/swap/fail-once ]; then rm -f /tmp/swap/fail-once; exit 1; fi; /sbin/modprobe --ignore-install vfio_pci $CMDLINE_OPTS' \
	>/etc/modprobe.d/swap-test.conf
: >"$W/fail-once"
t0=$(uptime_s)
run "$SWAP" to-ours
if [ "$RC" = 1 ] && printf '%s\n' "$OUT" | grep -q 'cannot reload vfio_pci' &&
	printf '%s\n' "$OUT" | grep -q 'rolled back: previous vfio'; then
	ok "to-ours with vfio_pci failing to reload on it rolls back (exit 1, $(since "$t0")s)"
else
	not_ok "to-ours with vfio_pci failing to reload on it rolls back (exit $RC)"
fi
show
rm -f /etc/modprobe.d/swap-test.conf "$W/fail-once"
rolled_back "after the failed to-ours (vfio_pci reload)"

# ------------------------------------------------------------ the swaps

# swapped CMD VERSION KO: a swap, and everything as it was
swapped() {
	local cmd=$1 ver=$2 ko=$3 t0
	t0=$(uptime_s)
	run "$SWAP" "$cmd"
	if [ "$RC" = 0 ]; then
		ok "vfio-swap $cmd ($(since "$t0")s)"
	else
		not_ok "vfio-swap $cmd (exit $RC)"
	fi
	show
	is_version "$cmd" "$ver"
	if [ "$(attr /sys/module/vfio/srcversion)" = "$(modinfo -F srcversion "$ko")" ]; then
		ok "$cmd: the loaded vfio is $ko (srcversion)"
	else
		not_ok "$cmd: the loaded vfio is $ko (srcversion)"
	fi
	same_snap "$cmd: every module, binding and mdev is back (sysfs)" "$W/base.snap"
	same_save "$cmd: vfio-rebind save is as before, vfio_version apart" "$W/base.json" version
	opens "$cmd"
}

swapped to-ours "$OURS_VERSION" "$OURS_KO"
run "$SWAP" to-ours
if [ "$RC" = 0 ] && printf '%s\n' "$OUT" | grep -q 'nothing to do'; then
	ok "to-ours again: nothing to do"
else
	not_ok "to-ours again: nothing to do (exit $RC)"
	show
fi
snap >"$W/ours.snap"
busy to-stock "$W/ours.snap" "$OURS_VERSION" "${DEVS[${#DEVS[@]} - 1]}"
swapped to-stock "$STOCK_VERSION" "$STOCK_KO"
same_save "to-stock: vfio-rebind save is identical to the first one" "$W/base.json"

bad=$(dmesg | grep -E 'BUG:|WARNING:|Oops|\[#[0-9]+\]|end trace|still in use|disagrees about version|Unknown symbol' || true)
if [ -z "$bad" ]; then
	ok "no oops, warning or symbol error in dmesg"
else
	not_ok "no oops, warning or symbol error in dmesg"
	printf '%s\n' "$bad" | diag
fi

[ "$fails" -eq 0 ]
