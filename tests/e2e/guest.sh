#!/bin/bash
# shellcheck disable=SC2317 # the checks are functions that `check` calls
# guest.sh - the guest side of the end-to-end test (tests/e2e/run.sh)
#
# Runs at every boot of the Debian 12 test system (e2e.service, from the
# payload disk mounted on /e2e) and does the phase that the kernel command
# line names (vfio_core_e2e=PHASE); run.sh boots each phase on its own copy
# (qcow2 overlay) of the disk that the phase before it left:
#
#   install   (previous ABI, stock vfio): step 1, apt install while a VM's
#             process holds the device; then the current ABI's image and
#             headers are unpacked (dpkg --unpack, as apt does before it
#             configures anything)
#   order-a   (previous ABI, after install): step 2, ours from the
#             initramfs; step 3, the current ABI configured headers first
#   order-b   (previous ABI, after install, at the same time as order-a):
#             step 3, the current ABI configured image first (the headers
#             unpacked, as apt leaves them)
#   current   (current ABI, after order-a): step 4, ours, the device opens;
#             step 5 begins: apt purge
#   purged    (current ABI, after current): step 5, stock after the reboot
#   secure    (previous ABI, module.sig_enforce=1, the system as built):
#             step 6, installing under signature enforcement; step 7, the
#             ABI guard; step 8, the drift guard
#
# Output, on the second serial port, for run.sh to assemble into TAP:
#   step N DESC         the checks that follow belong to step N
#   ok DESC / not ok DESC, and "# ..." diagnostics
#   phase PHASE done    the phase ran to its end
# Before it powers off, the guest writes /boot's kernel and initramfs of the
# kernel to boot next, and its logs, as a tar archive to the disk with the
# serial number e2eexport: run.sh boots exactly what dpkg, DKMS and
# initramfs-tools left in /boot.
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
phase=$(sed -n 's/.*\bvfio_core_e2e=\([a-z-]*\).*/\1/p' /proc/cmdline)
NAME=vfio-core
VERSION=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$E2E/dkms.conf")
PKG=${DEB%%_*}
DEBS=/var/cache/vfio-core-e2e
# Each command's own limit (seconds); run.sh's limit per boot is the
# backstop.
CMD_TIMEOUT=${CMD_TIMEOUT:-600}

tap() {
	printf '%s\n' "$*" >&3
}

step() {
	tap "step $1 $2"
}

# diag_file FILE [N]: the last N lines of FILE as diagnostics.
diag_file() {
	[ -s "$1" ] || return 0
	tail -n "${2:-25}" "$1" | sed 's/^/#   /' >&3
}

LAST=/dev/null
# check DESC CMD...: one check, ok if CMD succeeds; on failure, what CMD
# said and the end of the last command's log.
check() {
	local desc=$1
	shift
	if "$@" >"$STATE/check.out" 2>&1; then
		tap "ok $desc"
		return 0
	fi
	tap "not ok $desc"
	diag_file "$STATE/check.out" 10
	diag_file "$LAST"
	return 1
}

# run NAME CMD...: CMD (at most CMD_TIMEOUT seconds) with its output in
# $LOGS/NAME.log and on the console, each line with the seconds since it
# began; sets RC and LAST and notes the time it took.
RC=0
run() {
	local name=$1 t0 line
	shift
	LAST=$LOGS/$name.log
	t0=$SECONDS
	timeout -k 10 "$CMD_TIMEOUT" "$@" </dev/null 2>&1 | tee "$LAST" |
		while IFS= read -r line; do
			printf '[%s +%ds] %s\n' "$name" $((SECONDS - t0)) "$line"
		done >/dev/console
	RC=${PIPESTATUS[0]}
	tap "# $name: exit $RC, $((SECONDS - t0)) s ($*)"
	[ "$RC" != 124 ] || tap "# $name: killed after ${CMD_TIMEOUT}s"
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
# dpkg_is PKG STATUS: dpkg's status of PKG, e.g. "install ok unpacked".
dpkg_is() {
	local s
	s=$(dpkg-query -W -f='${Status}' "$1" 2>&1)
	[ "$s" = "$2" ] || { echo "$1: $s"; return 1; }
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
build_log() {
	echo "/var/lib/dkms/$NAME/$VERSION/$1/x86_64/log/make.log"
}
guards_passed() {
	grep -q "no vfio core change after" "$(build_log "$1")" &&
		grep -q "exports of vfio match" "$(build_log "$1")"
}

holder_intact() { kill -0 "$HOLDER" 2>/dev/null && edu_on_vfio_pci; }
nothing_left() { [ ! -e "/var/lib/dkms/$NAME" ] && no_ours_in "$PREV" && no_ours_in "$CUR"; }
none_installed() { no_ours_in "$CUR" && no_ours_in "$PREV"; }
prev_clean() { [ "$(dkms_state "$PREV")" = none ] && no_ours_in "$PREV"; }
stock_bound() { version_is 0.3 && edu_on_vfio_pci; }
clean_and_stock() { prev_clean && stock_bound; }

# hold_vfio: a process with the edu device's VFIO group open, as a VM has.
hold_vfio() {
	local g
	g=$(basename "$(readlink "/sys/bus/pci/devices/$(edu_bdf)/iommu_group")")
	(exec 7<>"/dev/vfio/$g" && exec sleep 100000) &
	HOLDER=$!
	sleep 1
	tap "# holding /dev/vfio/$g open (pid $HOLDER)"
}

# finish KVER: the phase is done; /boot's kernel and initramfs of KVER (the
# kernel run.sh boots next) and the logs go to the export disk; power off.
finish() {
	local ex=/dev/disk/by-id/virtio-e2eexport
	tap "# phase $phase took $((SECONDS - phase_t0)) s"
	if ! tar -C / -cf "$ex" "boot/vmlinuz-$1" "boot/initrd.img-$1" "${LOGS#/}" 2>"$STATE/export.err"; then
		tap "# cannot write the export disk: $(cat "$STATE/export.err")"
	fi
	tap "phase $phase done"
	sync
	systemctl poweroff
	exit 0
}

phase_t0=$SECONDS
tap "# phase $phase on $(uname -r) ($(cut -d' ' -f1 /proc/uptime) s after boot): $(cat /proc/cmdline)"
cp "$E2E/$DEB" /root/
case "$phase" in
install)
	step 1 "apt install ./$DEB builds and installs ours, never interrupting a running VM"
	check "the host starts on the stock vfio ($PREV)" version_is 0.3
	check "edu is on vfio-pci (bound from the initramfs)" edu_on_vfio_pci
	hold_vfio
	run apt-install apt-get install -y "/root/$DEB"
	check "apt install exits 0" rc_is 0
	check "DKMS built and installed ours for $PREV" dkms_is "$PREV" installed
	check "... the drift and ABI guards passed (make.log)" guards_passed "$PREV"
	check "... not for $CUR, whose image and headers are not installed" no_ours_in "$CUR"
	check "modprobe vfio on $PREV resolves to updates/dkms/vfio.ko" resolves "$PREV" updates/dkms/vfio.ko
	check "the initramfs of $PREV was refreshed and carries ours" initrd_carries "$PREV" updates/dkms/vfio.ko
	check "vfio is in use: the stock vfio stays loaded" version_is 0.3
	check "... the VM's process still runs and the device stays bound" holder_intact
	check "... and apt says the switch happens at the next boot" has "vfio-swap refused to swap now.*|loads it at the next boot"
	kill "$HOLDER"

	# The upgrade's first half, as apt does it: every package unpacked
	# before any is configured (phases order-a and order-b configure them
	# in the two orders).
	step 3 "the upgrade to $CUR builds ours for it, in both configuration orders, and its initramfs carries ours"
	run unpack-cur dpkg --unpack "$DEBS"/linux-image-"$CUR"_*.deb \
		"$DEBS"/linux-headers-*common*.deb "$DEBS"/linux-headers-"$CUR"_*.deb
	check "dpkg --unpack of the image and headers of $CUR exits 0" rc_is 0
	check "... nothing of ours for $CUR yet (unpacking runs no hook)" no_ours_in "$CUR"
	finish "$PREV"
	;;
order-a)
	step 2 "after a reboot ours is loaded from the initramfs and edu is on vfio-pci"
	check "vfio is vfio-core $VERSION" version_is "$VERSION"
	check "dmesg: the module's load line names vfio-core and $VERSION" load_line
	check "vfio was loaded in the initramfs: edu went to vfio-pci before systemd" from_initramfs
	check "edu is on vfio-pci" edu_on_vfio_pci

	step 3 "(order A)"
	run configure-headers dpkg --configure "linux-headers-${CUR%-amd64}-common" "linux-headers-$CUR"
	check "headers first: dpkg --configure of the headers exits 0" rc_is 0
	check "... the header hook built and installed ours for $CUR" has "installed for $CUR"
	run configure-image dpkg --configure "linux-image-$CUR"
	check "... then the image: dpkg --configure exits 0" rc_is 0
	check "... ours is installed for $CUR, the guards passed" dkms_is "$CUR" installed
	check "... the drift and ABI guards passed for $CUR" guards_passed "$CUR"
	check "... its new initramfs carries ours" initrd_carries "$CUR" updates/dkms/vfio.ko
	finish "$CUR"
	;;
order-b)
	step 3 "(order B)"
	# The image configured first.  As apt leaves them, the headers are
	# unpacked (not configured): their files, /lib/modules/$CUR/build
	# included, are there, so the image's hook builds ours before
	# initramfs-tools runs, and the new initramfs carries ours at once.
	run configure-image dpkg --configure "linux-image-$CUR"
	check "image first: dpkg --configure of the image exits 0" rc_is 0
	check "... the image's hook built and installed ours for $CUR (the headers' files are unpacked)" \
		has "installed for $CUR"
	check "... and left the initramfs to initramfs-tools, which ran next" \
		has "left to the kernel's own hook"
	check "... the new initramfs carries ours" initrd_carries "$CUR" updates/dkms/vfio.ko
	run configure-headers dpkg --configure "linux-headers-${CUR%-amd64}-common" "linux-headers-$CUR"
	check "... then the headers: dpkg --configure exits 0" rc_is 0
	check "... ours stays installed for $CUR" dkms_is "$CUR" installed
	check "... the drift and ABI guards passed for $CUR" guards_passed "$CUR"
	check "... the initramfs still carries ours" initrd_carries "$CUR" updates/dkms/vfio.ko
	finish "$CUR"
	;;
current)
	step 4 "after a reboot into $CUR ours is loaded and the device opens"
	check "running $CUR" test "$(uname -r)" = "$CUR"
	check "vfio is vfio-core $VERSION" version_is "$VERSION"
	check "dmesg: the module's load line names vfio-core and $VERSION" load_line
	check "vfio was loaded in the initramfs" from_initramfs
	check "edu is on vfio-pci" edu_on_vfio_pci
	run pci-open "$E2E/pci_open"
	check "pci_open: container, group, MAP_DMA, device fd, config and BAR0 reads" rc_is 0

	step 5 "apt purge gives the stock vfio back, live when idle and at the next boot"
	run apt-purge apt-get purge -y "$PKG"
	check "apt purge exits 0" rc_is 0
	check "vfio was idle: the purge swapped the stock vfio in live" version_is 0.3
	check "... edu is still on vfio-pci" edu_on_vfio_pci
	for k in "$PREV" "$CUR"; do
		check "the purge refreshed the initramfs of $k: it carries the stock vfio" \
			initrd_carries "$k" kernel/drivers/vfio/vfio.ko
	done
	check "nothing of ours is left in DKMS or /lib/modules" nothing_left
	finish "$CUR"
	;;
purged)
	step 5 "(after the reboot)"
	check "after the reboot: the stock vfio is loaded" version_is 0.3
	check "... no vfio-core load line in dmesg" no_load_line
	check "... and edu is still on vfio-pci" edu_on_vfio_pci
	finish "$CUR"
	;;
secure)
	step 6 "with module.sig_enforce=1 and the DKMS key not trusted, installing keeps stock working"
	check "the kernel enforces module signatures" test "$(cat /sys/module/module/parameters/sig_enforce)" = Y
	check "the stock vfio is loaded, edu on vfio-pci" stock_bound
	run apt-install-sb apt-get install -y "/root/$DEB"
	check "apt install exits 0: the package is installed, apt is not left broken" rc_is 0
	check "... dpkg has it configured" dpkg_is "$PKG" "install ok installed"
	check "... it says the key must be enrolled, and how to go on" \
		has "mokutil" "dpkg-reconfigure vfio-core-dkms"
	check "... nothing built or installed" none_installed
	inst=$(dpkg-query -L "$PKG" | grep '/scripts/vfio-core-install$' | head -n 1)
	run make-install "$inst" install
	check "vfio-core-install install (make install) exits 3: an action is needed first" rc_is 3
	check "... it says the key must be enrolled" has "mokutil --import"
	check "... modprobe vfio still finds the stock module" resolves "$PREV" kernel/drivers/vfio/vfio.ko
	check "... the initramfs still carries the stock vfio" initrd_carries "$PREV" kernel/drivers/vfio/vfio.ko
	check "... the stock vfio still runs and edu is on vfio-pci" stock_bound

	# Steps 7 and 8 run DKMS's build, which every install path uses
	# (under signature enforcement vfio-core-install stops before it).
	mlog=/var/lib/dkms/$NAME/$VERSION/build/make.log
	symvers=/usr/src/linux-headers-$PREV/Module.symvers
	step 7 "a doctored Module.symvers trips the ABI guard"
	check "nothing of ours is built for $PREV yet" prev_clean
	cp -a "$symvers" "$STATE/Module.symvers.orig"
	sym=$(awk -F'\t' '$3 ~ /(^|\/)vfio$/ { print $2; exit }' "$symvers")
	awk -F'\t' -v OFS='\t' -v s="$sym" '$3 ~ /(^|\/)vfio$/ && $2 == s { $1 = "0x12345678" } { print }' \
		"$STATE/Module.symvers.orig" >"$symvers"
	tap "# $symvers: CRC of $sym set to 0x12345678"
	run abi-build dkms build "$NAME/$VERSION" -k "$PREV"
	check "dkms build fails (exit 10: the build command failed)" rc_is 10
	LAST=$mlog
	check "... after compiling, the ABI guard names $sym in make.log" \
		has 'CC \[M\]' "abi: DECLINED" "vfio-core-guard: +$sym: kernel CRC 0x12345678"
	check "... nothing built or installed for $PREV; the stock vfio runs on" clean_and_stock
	cp -a "$STATE/Module.symvers.orig" "$symvers"

	cl=/usr/share/doc/linux-headers-$PREV/changelog.Debian.gz
	step 8 "a doctored changelog trips the drift guard"
	cp -a "$cl" "$STATE/changelog.orig"
	{
		printf 'linux (6.1.999-1) bookworm-security; urgency=high\n\n'
		printf '  * New upstream stable update:\n'
		printf '    - vfio: Fix a reference leak in the core (CVE-2027-0001)\n'
		printf '    - vfio/pci: Fix a driver bug\n\n'
		printf ' -- Tester <t@example.org>  Mon, 01 Feb 2027 00:00:00 +0000\n\n'
		gzip -dc "$STATE/changelog.orig"
	} | gzip -9n >"$cl"
	run drift-build dkms build "$NAME/$VERSION" -k "$PREV"
	check "dkms build fails (exit 10)" rc_is 10
	LAST=$mlog
	check "... the drift guard declined, printing the core entry" \
		has "drift: DECLINED" "6.1.999-1: vfio: Fix a reference leak in the core"
	check "... not the vfio-pci one" lacks "vfio/pci: Fix a driver bug"
	check "... before compiling anything" lacks 'CC \[M\]'
	check "... with the way to accept it" has "echo 6.1.999-1 \| sudo tee -a /etc/vfio-core/accept-drift"
	check "... nothing built or installed for $PREV; the stock vfio runs on" clean_and_stock
	cp -a "$STATE/changelog.orig" "$cl"
	finish "$PREV"
	;;
*)
	tap "# unknown phase '$phase'"
	finish "$(uname -r)"
	;;
esac
