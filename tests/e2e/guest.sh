#!/bin/bash
# shellcheck disable=SC2317 # the checks are functions that `check` calls
# guest.sh - the guest side of the end-to-end test (tests/e2e/run.sh)
#
# Runs at every boot of the Debian 12 test system (e2e.service, from the
# payload disk mounted on /e2e), does the next phase of the test, writes its
# TAP to the second serial port, records which kernel (and command line) to
# boot next in /var/lib/vfio-core-e2e/next, and powers off; the host boots
# it again.  Each step of the test is one TAP subtest; a step that spans a
# reboot keeps its results in /var/lib/vfio-core-e2e until it is reported.
#
#   phase 1 (previous ABI, stock vfio): step 1, apt install with vfio in use
#   phase 2 (previous ABI): step 2, ours from the initramfs; step 3, the
#           upgrade to the current ABI in both configuration orders
#   phase 3 (current ABI): step 4, ours, the device opens; apt purge
#   phase 4 (current ABI, module.sig_enforce=1): step 5, stock after the
#           purge and a reboot (Debian's stock vfio.ko is signed); step 6,
#           installing under signature enforcement; step 7, the ABI guard;
#           step 8, the drift guard
set -uo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

E2E=/e2e
# shellcheck source=/dev/null # written by run.sh: PREV, CUR (kernel releases), DEB
. "$E2E/config"
: "${PREV:?}" "${CUR:?}" "${DEB:?}"
STATE=/var/lib/vfio-core-e2e
LOGS=$STATE/logs
mkdir -p "$LOGS"
exec 3>/dev/ttyS1
phase=$(cat "$STATE/phase" 2>/dev/null || echo 1)
NAME=vfio-core
VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$E2E/dkms.conf")
DEBS=/var/cache/vfio-core-e2e

tap() {
	printf '%s\n' "$*" >&3
}

# ---- subtests: begin N DESC, then check ..., then end
sub_n=0
sub_fail=0
step_n=
step_desc=
begin() {
	step_n=$1
	step_desc=$2
	sub_n=0
	sub_fail=0
	tap "# Subtest: $step_n - $step_desc"
}

# diag_file FILE [N]: the last N lines of FILE as TAP comments.
diag_file() {
	[ -s "$1" ] || return 0
	tail -n "${2:-25}" "$1" | sed 's/^/    #   /' >&3
}

LAST=/dev/null
# check DESC CMD...: one subtest, ok if CMD succeeds.
check() {
	local desc=$1
	shift
	sub_n=$((sub_n + 1))
	if "$@" >"$STATE/check.out" 2>&1; then
		tap "    ok $sub_n - $desc"
		return 0
	fi
	sub_fail=$((sub_fail + 1))
	tap "    not ok $sub_n - $desc"
	diag_file "$STATE/check.out" 10
	diag_file "$LAST"
	return 1
}

end() {
	tap "    1..$sub_n"
	if [ "$sub_fail" = 0 ] && [ "$sub_n" -gt 0 ]; then
		tap "ok $step_n - $step_desc"
	else
		tap "not ok $step_n - $step_desc"
	fi
}

# run NAME CMD...: CMD with its output in $LOGS/NAME.log; sets RC and LAST
# and notes the time it took.
RC=0
run() {
	local name=$1 t0
	shift
	LAST=$LOGS/$name.log
	t0=$(date +%s)
	# Also on the console, so that the host's console.log shows progress.
	"$@" </dev/null 2>&1 | tee "$LAST" | sed -u "s/^/[$name] /" >/dev/console
	RC=${PIPESTATUS[0]}
	echo "$RC" >"$LOGS/$name.rc"
	tap "    # $name: exit $RC, $(($(date +%s) - t0)) s ($*)"
}

# ---- what the checks look at
has() {
	local re
	for re in "$@"; do
		grep -Eq -- "$re" "$LAST" || { echo "no line matches: $re"; return 1; }
	done
}
lacks() {
	! grep -Eq -- "$1" "$LAST"
}
rc_is() {
	[ "$RC" = "$1" ] || { echo "exit status $RC, want $1"; return 1; }
}
loaded_version() {
	cat /sys/module/vfio/version 2>/dev/null || echo none
}
version_is() {
	local v
	v=$(loaded_version)
	[ "$v" = "$1" ] || { echo "/sys/module/vfio/version is $v"; return 1; }
}
edu_bdf() {
	local d
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ]; then
			echo "${d##*/}"
			return 0
		fi
	done
	return 1
}
edu_on_vfio_pci() {
	local drv
	drv=$(readlink "/sys/bus/pci/devices/$(edu_bdf)/driver") || { echo "edu has no driver"; return 1; }
	[ "${drv##*/}" = vfio-pci ] || { echo "edu is on ${drv##*/}"; return 1; }
}
# resolves KVER PATH: modprobe vfio on KVER loads lib/modules/KVER/PATH.
resolves() {
	local f
	f=$(modinfo -k "$1" -n vfio) || return 1
	[ "$f" = "/lib/modules/$1/$2" ] || { echo "modprobe vfio on $1 loads $f"; return 1; }
}
# initrd_carries KVER PATH: /boot/initrd.img-KVER holds lib/modules/KVER/PATH
# and no other vfio.ko.
initrd_carries() {
	local l
	l=$(lsinitramfs "/boot/initrd.img-$1" | grep -E '/vfio\.ko$' | sed 's|^usr/||') ||
		{ echo "no vfio.ko in the initramfs"; return 1; }
	[ "$l" = "lib/modules/$1/$2" ] || { echo "the initramfs carries: $l"; return 1; }
}
dkms_state() {
	local s
	s=$(dkms status -m "$NAME" -v "$VERSION" -k "$1" 2>/dev/null)
	case "$s" in
	*": installed"*) echo installed ;;
	*": built"*) echo built ;;
	*) echo none ;;
	esac
}
dkms_is() {
	local s
	s=$(dkms_state "$1")
	[ "$s" = "$2" ] || { echo "dkms status for $1: $s"; return 1; }
}
no_ours_in() {
	[ ! -e "/lib/modules/$1/updates/dkms/vfio.ko" ] || { echo "updates/dkms/vfio.ko is there"; return 1; }
}
# the load line the module prints: its name and version
load_line() {
	dmesg | grep -i 'vfio-core' | grep -F "$VERSION"
}
no_load_line() {
	! dmesg | grep -i 'vfio-core'
}
# from_initramfs: vfio-pci took the edu device (ids=) before the real
# root's systemd started, i.e. in the initramfs.
from_initramfs() {
	dmesg | awk '/Run \/init as init process/ { i = NR } /vfio_pci: add \[1234:11e8/ { v = NR }
		/systemd\[1\]: /{ if (!s) s = NR } END {
			printf "Run /init: line %d, vfio_pci add: line %d, systemd: line %d\n", i, v, s
			exit !(i && v && s && i < v && v < s) }'
}
pid_alive() {
	kill -0 "$1" 2>/dev/null
}

holder_intact() { pid_alive "$HOLDER" && edu_on_vfio_pci; }
cur_purged() { [ "$RC" = 0 ] && [ "$(dkms_state "$CUR")" = none ]; }
nothing_left() { [ ! -e "/var/lib/dkms/$NAME" ] && no_ours_in "$PREV" && no_ours_in "$CUR"; }
pkg_configured() { [ "$(dpkg-query -W -f='${Status}' "${DEB%%_*}")" = "install ok installed" ]; }
none_installed() { no_ours_in "$CUR" && no_ours_in "$PREV"; }
cur_clean() { [ "$(dkms_state "$CUR")" = none ] && no_ours_in "$CUR"; }
stock_bound() { version_is 0.3 && edu_on_vfio_pci; }
stock_intact() { no_ours_in "$CUR" && stock_bound; }
clean_and_stock() { cur_clean && stock_bound; }

# hold_vfio: a process with the edu device's VFIO group open, as a VM has.
hold_vfio() {
	local g
	g=$(basename "$(readlink "/sys/bus/pci/devices/$(edu_bdf)/iommu_group")")
	(exec 7<>"/dev/vfio/$g" && exec sleep 100000) &
	HOLDER=$!
	sleep 1
	tap "    # holding /dev/vfio/$g open (pid $HOLDER)"
}

# next_boot KVER [CMDLINE]: what the host boots next, then power off.
next_boot() {
	echo "$((phase + 1))" >"$STATE/phase"
	echo "$*" >"$STATE/next"
	tap "# phase $phase done; next boot: ${*:-none}"
	sync
	systemctl poweroff
	exit 0
}

tap "# phase $phase on $(uname -r) ($(cut -d' ' -f1 /proc/uptime) s after boot): $(cat /proc/cmdline)"
cp "$E2E/$DEB" /root/
case "$phase" in
1)
	begin 1 "apt install ./$DEB builds and installs ours, never interrupting a running VM"
	check "the host starts on the stock vfio ($PREV)" version_is 0.3
	check "edu is on vfio-pci (bound from the initramfs)" edu_on_vfio_pci
	hold_vfio
	run apt-install apt-get install -y "/root/$DEB"
	check "apt install exits 0" rc_is 0
	check "DKMS built and installed ours for $PREV (the guards passed)" dkms_is "$PREV" installed
	check "... with the drift guard's verdict in the build log" \
		grep -q "no vfio core change after" "/var/lib/dkms/$NAME/$VERSION/$PREV/x86_64/log/make.log"
	check "... and the ABI guard's" grep -q "exports of vfio match" "/var/lib/dkms/$NAME/$VERSION/$PREV/x86_64/log/make.log"
	check "modprobe vfio on $PREV resolves to updates/dkms/vfio.ko" resolves "$PREV" updates/dkms/vfio.ko
	check "the initramfs of $PREV was refreshed and carries ours" initrd_carries "$PREV" updates/dkms/vfio.ko
	check "vfio is in use: the stock vfio stays loaded" version_is 0.3
	check "... the VM's process still runs and the device stays bound" holder_intact
	check "... and apt says the switch happens at the next boot" has "vfio-swap refused to swap now.*|loads it at the next boot"
	kill "$HOLDER"
	end
	next_boot "$PREV"
	;;
2)
	begin 2 "after a reboot ours is loaded from the initramfs and edu is on vfio-pci"
	check "vfio is vfio-core $VERSION" version_is "$VERSION"
	check "dmesg: the module's load line names vfio-core and $VERSION" load_line
	check "vfio was loaded in the initramfs: edu went to vfio-pci before systemd" from_initramfs
	check "edu is on vfio-pci" edu_on_vfio_pci
	end

	begin 3 "the upgrade to $CUR builds ours for it, in both configuration orders, and its initramfs carries ours"
	# Order 1: the headers are configured before the image.
	run headers-first dpkg -i "$DEBS"/linux-headers-*common*.deb "$DEBS"/linux-headers-"$CUR"_*.deb
	check "headers first: dpkg -i of the headers exits 0" rc_is 0
	check "... the header hook built and installed ours for $CUR" has "installed for $CUR"
	run image-second dpkg -i "$DEBS"/linux-image-"$CUR"_*.deb
	check "... then the image: dpkg -i exits 0" rc_is 0
	check "... ours is installed for $CUR" dkms_is "$CUR" installed
	check "... its new initramfs carries ours" initrd_carries "$CUR" updates/dkms/vfio.ko
	run purge-cur dpkg --purge "linux-image-$CUR" "linux-headers-$CUR" "linux-headers-${CUR%-amd64}-common"
	check "... purged again (DKMS's prerm hook removes ours for $CUR)" cur_purged
	# Order 2: the image first (no headers: its initramfs gets the stock
	# vfio), then the headers: the header hook builds and refreshes it.
	run image-first dpkg -i "$DEBS"/linux-image-"$CUR"_*.deb
	check "image first: dpkg -i exits 0" rc_is 0
	check "... the hook waits for the headers" has "no headers for $CUR yet"
	check "... so its initramfs carries the stock vfio for now" initrd_carries "$CUR" kernel/drivers/vfio/vfio.ko
	run headers-second dpkg -i "$DEBS"/linux-headers-*common*.deb "$DEBS"/linux-headers-"$CUR"_*.deb
	check "... then the headers: dpkg -i exits 0" rc_is 0
	check "... ours is installed for $CUR" dkms_is "$CUR" installed
	check "... the hook refreshed the initramfs, which now carries ours" initrd_carries "$CUR" updates/dkms/vfio.ko
	check "... the drift and ABI guards passed for $CUR" grep -q "exports of vfio match" \
		"/var/lib/dkms/$NAME/$VERSION/$CUR/x86_64/log/make.log"
	end
	next_boot "$CUR"
	;;
3)
	begin 4 "after a reboot into $CUR ours is loaded and the device opens"
	check "running $CUR" test "$(uname -r)" = "$CUR"
	check "vfio is vfio-core $VERSION" version_is "$VERSION"
	check "dmesg: the module's load line names vfio-core and $VERSION" load_line
	check "vfio was loaded in the initramfs" from_initramfs
	check "edu is on vfio-pci" edu_on_vfio_pci
	run pci-open "$E2E/pci_open"
	check "pci_open: container, group, MAP_DMA, device fd, config and BAR0 reads" rc_is 0
	end
	# Step 5 begins: purge now, check after the reboot.
	run apt-purge apt-get purge -y "${DEB%%_*}"
	echo "$(loaded_version) $(edu_on_vfio_pci >/dev/null 2>&1 && echo bound || echo unbound)" >"$STATE/after-purge"
	for k in "$PREV" "$CUR"; do
		initrd_carries "$k" kernel/drivers/vfio/vfio.ko >"$STATE/initrd-$k" 2>&1
		echo "$?" >>"$STATE/initrd-$k"
	done
	next_boot "$CUR" module.sig_enforce=1
	;;
4)
	begin 5 "apt purge gives the stock vfio back, live when idle and at the next boot"
	LAST=$LOGS/apt-purge.log
	RC=$(cat "$LOGS/apt-purge.rc")
	check "apt purge exited 0" rc_is 0
	check "vfio was idle: the purge swapped the stock vfio in live, edu still bound" \
		test "$(cat "$STATE/after-purge")" = "0.3 bound"
	for k in "$PREV" "$CUR"; do
		check "the purge refreshed the initramfs of $k: it carries the stock vfio" \
			test "$(tail -n 1 "$STATE/initrd-$k")" = 0
	done
	check "nothing of ours is left in DKMS or /lib/modules" \
		nothing_left
	check "after the reboot: the stock vfio is loaded" version_is 0.3
	check "... no vfio-core load line in dmesg" no_load_line
	check "... and edu is still on vfio-pci" edu_on_vfio_pci
	end

	begin 6 "with module.sig_enforce=1 and the DKMS key not trusted, installing keeps stock working"
	check "the kernel enforces module signatures" test "$(cat /sys/module/module/parameters/sig_enforce)" = Y
	check "the stock vfio is loaded" version_is 0.3
	run apt-install-sb apt-get install -y "/root/$DEB"
	check "apt install exits 0: the package is installed, apt is not left broken" rc_is 0
	check "... dpkg has it configured" pkg_configured
	check "... it says the key must be enrolled, and how to go on" \
		has "mokutil" "dpkg-reconfigure vfio-core-dkms"
	check "... nothing installed: not for $CUR, not for $PREV" none_installed
	check "... modprobe vfio still finds the stock module" resolves "$CUR" kernel/drivers/vfio/vfio.ko
	check "... the initramfs still carries the stock vfio" initrd_carries "$CUR" kernel/drivers/vfio/vfio.ko
	check "... the stock vfio still runs and edu is on vfio-pci" stock_bound
	end

	# Steps 7 and 8 run DKMS's build, which every install path uses
	# (under signature enforcement vfio-core-install stops before it).
	mlog=/var/lib/dkms/$NAME/$VERSION/build/make.log
	symvers=/usr/src/linux-headers-$CUR/Module.symvers
	begin 7 "a doctored Module.symvers trips the ABI guard"
	check "nothing of ours is built for $CUR yet" cur_clean
	cp -a "$symvers" "$STATE/Module.symvers.orig"
	sym=$(awk -F'\t' '$3 ~ /(^|\/)vfio$/ { print $2; exit }' "$symvers")
	awk -F'\t' -v OFS='\t' -v s="$sym" '$3 ~ /(^|\/)vfio$/ && $2 == s { $1 = "0x12345678" } { print }' \
		"$STATE/Module.symvers.orig" >"$symvers"
	tap "    # $symvers: CRC of $sym set to 0x12345678"
	run abi-build dkms build "$NAME/$VERSION" -k "$CUR"
	check "dkms build fails (exit 10: the build command failed)" rc_is 10
	LAST=$mlog
	check "... after compiling, the ABI guard names $sym in make.log" \
		has 'CC \[M\]' "abi: DECLINED" "vfio-core-guard: +$sym: kernel CRC 0x12345678"
	check "... nothing built or installed for $CUR; the stock vfio runs on" clean_and_stock
	cp -a "$STATE/Module.symvers.orig" "$symvers"
	end

	cl=/usr/share/doc/linux-headers-$CUR/changelog.Debian.gz
	begin 8 "a doctored changelog trips the drift guard"
	cp -a "$cl" "$STATE/changelog.orig"
	{
		printf 'linux (6.1.999-1) bookworm-security; urgency=high\n\n'
		printf '  * New upstream stable update:\n'
		printf '    - vfio: Fix a reference leak in the core (CVE-2027-0001)\n'
		printf '    - vfio/pci: Fix a driver bug\n\n'
		printf ' -- Tester <t@example.org>  Mon, 01 Feb 2027 00:00:00 +0000\n\n'
		gzip -dc "$STATE/changelog.orig"
	} | gzip -9n >"$cl"
	run drift-build dkms build "$NAME/$VERSION" -k "$CUR"
	check "dkms build fails (exit 10)" rc_is 10
	LAST=$mlog
	check "... the drift guard declined, printing the core entry" \
		has "drift: DECLINED" "6.1.999-1: vfio: Fix a reference leak in the core"
	check "... not the vfio-pci one" lacks "vfio/pci: Fix a driver bug"
	check "... before compiling anything" lacks 'CC \[M\]'
	check "... with the way to accept it" has "echo 6.1.999-1 \| sudo tee -a /etc/vfio-core/accept-drift"
	check "... nothing built or installed for $CUR; the stock vfio runs on" stock_intact
	cp -a "$STATE/changelog.orig" "$cl"
	end
	tap "# e2e: all phases done"
	next_boot 'done'
	;;
*)
	tap "# nothing to do in phase $phase"
	next_boot 'done'
	;;
esac
