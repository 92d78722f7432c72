# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-rebind: save, check, restore, bind, unbind; driverctl and mdevctl;
# failures, full disks and argument counts. Sourced by rebind_test.sh.

S0=$WORK/state0.json

c_save() {
	make_host "$WORK/h1"
	run save "$REBIND" save "$S0"
	if [[ $RC == 0 ]] && json_ok "$S0" && jq -e --arg ap "$U_AP" --arg ap2 "$U_AP2" \
		--arg ccw "$U_CCW" --arg mtty "$U_MTTY" '
		.format == "vfio-core-state/1" and
		.host == {machine_id: "0123456789abcdef0123456789abcdef", hostname: "kvmhost1"} and
		.kernel == "6.1.0-57-amd64" and .vfio_version == "0.3" and
		.pci == [{address: "0000:03:00.0", driver: "vfio-pci", original_driver: "",
			driver_override: "vfio-pci", driverctl: "", iommu_group: "12",
			group_members: ["0000:00:1c.0", "0000:03:00.0"]}] and
		(.mdev | map({key: .uuid, value: .}) | from_entries) as $m |
		$m[$ap].ap == {adapters: [3, 60], domains: [4, 71], control_domains: [71, 84]} and
		$m[$ap2].ap == {adapters: [], domains: [5], control_domains: []} and
		$m[$ccw] == {uuid: $ccw, parent: "0.0.0313", parent_path: "devices/css0/0.0.0313",
			type: "vfio_ccw-io", mdevctl_defined: false} and
		$m[$mtty].parent_path == "devices/virtual/mtty/mtty" and
		$m[$mtty].type == "mtty-2" and ($m[$mtty] | has("ap") | not)' "$S0" >/dev/null; then
		pass
	else
		fail "rc=$RC $ERR" "$(cat "$S0" 2>/dev/null)"
	fi
}
tcase c_save "save: JSON (jq) with the PCI binding, its IOMMU group, the vfio_ap matrix and control domains, the ccw and mtty mdevs"

c_save_stdout() {
	run save2 "$REBIND" save -
	[[ $RC == 0 && $OUT == "$(<"$S0")" ]]
	verdict $? "$ERR"
}
tcase c_save_stdout "save -: the same JSON on stdout"

c_restore_noop() {
	expect_refusal 0 'restored 1 PCI device' "$REBIND" restore "$S0"
}
tcase c_restore_noop "restore of the current state changes nothing"

# Break everything the state file lists: tear the mdevs down and give the PCI
# device back to its driver, as a module reload without a restore would.
break_state() {
	w "bus/mdev/devices/$U_AP/remove" 1
	w "bus/mdev/devices/$U_AP2/remove" 1
	w "bus/mdev/devices/$U_CCW/remove" 1
	w "bus/mdev/devices/$U_MTTY/remove" 1
	w bus/pci/drivers/vfio-pci/unbind 0000:03:00.0
	w bus/pci/devices/0000:03:00.0/driver_override ''
}

# Each bad input: clear message, exit 2, not one change -- even though the
# valid entries before the bad one would need changes.
c_bad_addr() {
	break_state
	BROKEN=$(snap)
	edit "$S0" '.pci[0].address = "0000:09:00.0"' "$WORK/bad-addr.json"
	expect_refusal 2 'unknown PCI device 0000:09:00.0' "$REBIND" restore "$WORK/bad-addr.json"
}
tcase c_bad_addr "restore: unknown PCI address refused, no change"

c_bad_uuid() {
	edit "$S0" "(.mdev[] | select(.uuid == \"$U_MTTY\") | .uuid) = \"83b8f4f2-509f-382f-3c1e-e6bfe0fa10\"" \
		"$WORK/bad-uuid.json"
	expect_refusal 2 'malformed UUID' "$REBIND" restore "$WORK/bad-uuid.json"
}
tcase c_bad_uuid "restore: malformed UUID refused, no change"

c_bad_adapter() {
	edit "$S0" "(.mdev[] | select(.uuid == \"$U_AP\") | .ap.adapters) = [3, 64]" "$WORK/bad-adapter.json"
	expect_refusal 2 'AP adapter 64 out of range \(0-63' "$REBIND" restore "$WORK/bad-adapter.json"
}
tcase c_bad_adapter "restore: adapter 64 > ap_max_adapter_id 63 refused, no change"

c_bad_domain() {
	edit "$S0" "(.mdev[] | select(.uuid == \"$U_AP2\") | .ap.domains) = [85]" "$WORK/bad-domain.json"
	expect_refusal 2 'AP domain 85 out of range \(0-84' "$REBIND" restore "$WORK/bad-domain.json"
}
tcase c_bad_domain "restore: domain 85 > ap_max_domain_id 84 refused, no change"

c_bad_cdom() {
	edit "$S0" "(.mdev[] | select(.uuid == \"$U_AP\") | .ap.control_domains) = [71, -1]" "$WORK/bad-cdom.json"
	expect_refusal 2 'is not an AP control domain' "$REBIND" restore "$WORK/bad-cdom.json"
}
tcase c_bad_cdom "restore: negative control domain refused, no change"

c_other_host() {
	edit "$S0" '.host.machine_id = "ffffffffffffffffffffffffffffffff"' "$WORK/other-host.json"
	expect_refusal 2 'saved on another host' "$REBIND" restore "$WORK/other-host.json"
}
tcase c_other_host "restore: state file from another host refused, no change"

c_other_kernel() {
	edit "$S0" '.kernel = "6.1.0-56-amd64"' "$WORK/other-kernel.json"
	expect_refusal 2 'saved under kernel 6.1.0-56-amd64' "$REBIND" restore "$WORK/other-kernel.json"
}
tcase c_other_kernel "restore: state file from another kernel refused, no change"

c_truncated() {
	head -c 700 "$S0" >"$WORK/truncated.json"
	expect_refusal 2 'malformed JSON' "$REBIND" restore "$WORK/truncated.json"
}
tcase c_truncated "restore: truncated JSON refused, no change"

c_syntax() {
	sedit "$S0" 's/"pci": \[/"pci": [,/' "$WORK/badsyntax.json"
	expect_refusal 2 'malformed JSON at line 9' "$REBIND" restore "$WORK/badsyntax.json"
}
tcase c_syntax "restore: JSON syntax error refused with its line, no change"

c_bad_type() {
	edit "$S0" '(.mdev[] | select(.type == "vfio_ccw-io") | .type) = "vfio_ccw-nosuch"' "$WORK/badtype.json"
	expect_refusal 2 'has no type vfio_ccw-nosuch' "$REBIND" restore "$WORK/badtype.json"
}
tcase c_bad_type "restore: mdev type the parent lacks refused, no change"

c_missing_file() {
	expect_refusal 2 'cannot read' "$REBIND" restore "$WORK/nonexistent.json"
}
tcase c_missing_file "restore: missing file refused"

c_dry_run() {
	run dry "$REBIND" --dry-run restore "$S0"
	if [[ $RC == 0 && $(snap) == "$BROKEN" ]] &&
		grep -q "would write '0000:03:00.0' to .*drivers_probe" <<<"$OUT" &&
		grep -q "would write '$U_AP' to .*vfio_ap-passthrough/create" <<<"$OUT" &&
		grep -q "would write '0x3c' to .*$U_AP/assign_adapter" <<<"$OUT" &&
		grep -q "would write '0x54' to .*$U_AP/assign_control_domain" <<<"$OUT" &&
		grep -q "would take the AP configuration lock" <<<"$OUT"; then
		pass
	else
		fail "rc=$RC" "$OUT" "$ERR"
	fi
}
tcase c_dry_run "restore --dry-run prints every change and makes none"

# A failure half-way (the kernel rejects the second domain of the first
# vfio_ap mdev) rolls back everything done before it.
c_halfway() {
	local st=0
	FAKE_FAIL_WRITE="bus/mdev/devices/$U_AP/assign_domain 0x47" \
		refused 1 'all changes were rolled back' "$REBIND" restore "$S0" || st=1
	[[ ! -e $VFIO_CORE_STATEDIR/journal-rebind ]] || {
		st=1
		DIAG+=("journal left behind")
	}
	verdict "$st"
}
tcase c_halfway "restore: a failure half-way is rolled back completely (exit 1), journal gone"

c_aplock_released() {
	[[ ! -e $VFIO_AP_LOCKFILE ]]
	verdict $? "AP lock left behind: $(cat "$VFIO_AP_LOCKFILE" 2>/dev/null)"
}
tcase c_aplock_released "AP lock released after the failed restore"

# The AP lock: held by a live process -> wait, give up, change nothing.
c_aplock_live() {
	local p
	sleep 60 &
	p=$!
	BG_PIDS+=("$p")
	printf '%d\n' "$p" >"$VFIO_AP_LOCKFILE"
	expect_refusal 1 "s390apconfig.lock held by pid $p" "$REBIND" restore "$S0"
	rm -f "$VFIO_AP_LOCKFILE"
	kill "$p" 2>/dev/null || true
}
tcase c_aplock_live "restore: AP lock held by a live pid -> error, no change"

# Stale lock of a dead pid is broken, as s390-tools does.
c_roundtrip() {
	local dead
	bash -c 'exit 0' &
	dead=$!
	wait "$dead" || true
	printf '%d\n' "$dead" >"$VFIO_AP_LOCKFILE"
	run restore "$REBIND" restore "$S0"
	"$REBIND" save "$WORK/state1.json" 2>/dev/null
	if [[ $RC == 0 ]] && diff <(canon "$S0") <(canon "$WORK/state1.json") >/dev/null &&
		[[ ! -e $VFIO_AP_LOCKFILE ]] && grep -q 'removed stale AP lock' <<<"$ERR"; then
		pass
	else
		fail "rc=$RC" "$ERR" "$(diff "$S0" "$WORK/state1.json")"
	fi
}
tcase c_roundtrip "save -> teardown -> restore round trip: vfio-pci binding, vfio_ap (matrix, control domains), vfio_ccw, mtty mdevs identical; stale AP lock broken (reported) and released"

# assign_* attributes are write-only in the fake as in 6.1: nothing can be
# read back from them, only from matrix and control_domains.
c_readback() {
	[[ -z $(cat "$SYSFS/bus/mdev/devices/$U_AP/assign_adapter") &&
		$(cat "$SYSFS/bus/mdev/devices/$U_AP/matrix") == $'03.0004\n03.0047\n3c.0004\n3c.0047' &&
		$(cat "$SYSFS/bus/mdev/devices/$U_AP/control_domains") == $'0047\n0054' &&
		$(cat "$SYSFS/bus/mdev/devices/$U_AP2/matrix") == '.0005' ]]
	verdict $? "$(cat "$SYSFS/bus/mdev/devices/$U_AP/matrix")"
}
tcase c_readback "fake vfio_ap read-back in 6.1 format (aa.dddd cross product, .dddd, %04x control domains)"

# ------------------------------------------------------------ bind / unbind

c_bind_bad() {
	expect_refusal 2 "is not a PCI address" "$REBIND" bind 0000:01:00
}
tcase c_bind_bad "bind: malformed address refused (exit 2)"

c_bind_unknown() {
	expect_refusal 2 "unknown PCI device 0000:05:00.0" "$REBIND" bind 0000:05:00.0
}
tcase c_bind_unknown "bind: unknown device refused (exit 2)"

c_bind_bridge() {
	expect_refusal 2 "0000:00:1c.0 is a PCI bridge" "$REBIND" bind 0000:00:1c.0
}
tcase c_bind_bridge "bind: a PCI bridge refused (exit 2), no change"

c_bind_nogroup() {
	expect_refusal 3 '0000:01:00.1  driver=e1000e' "$REBIND" bind 0000:01:00.0
}
tcase c_bind_nogroup "bind: device with other IOMMU group members refused without --group (exit 3), group listed"

c_bind_group() {
	BEFORE_BIND=$(snap)
	run bindg "$REBIND" bind --group 01:00.0
	[[ $RC == 0 && $(readlink "$SYSFS/bus/pci/devices/0000:01:00.0/driver") == */vfio-pci &&
		$(readlink "$SYSFS/bus/pci/devices/0000:01:00.1/driver") == */vfio-pci &&
		$(cat "$SYSFS/bus/pci/devices/0000:01:00.1/driver_override") == vfio-pci &&
		$(cat "$VFIO_CORE_STATEDIR/pci/0000:01:00.1") == $'driver=e1000e\noverride=' &&
		! -e $VFIO_CORE_STATEDIR/journal-rebind ]]
	verdict $? "rc=$RC" "$ERR"
}
tcase c_bind_group "bind --group: both functions on vfio-pci, original driver remembered, no journal left"

c_bind_single() {
	run bindb "$REBIND" bind 0000:04:00.0
	[[ $RC == 0 && $(readlink "$SYSFS/bus/pci/devices/0000:04:00.0/driver") == */vfio-pci ]]
	verdict $? "$ERR"
}
tcase c_bind_single "bind: single-device group"

c_bind_bridge_member() {
	run bridge "$REBIND" bind 0000:03:00.0
	[[ $RC == 0 && $(readlink "$SYSFS/bus/pci/devices/0000:00:1c.0/driver") == */pcieport ]]
	verdict $? "$ERR"
}
tcase c_bind_bridge_member "bind: the PCI bridge in the device's group left on pcieport"

# A process holding the group open: unbind refuses and names it.
c_unbind_busy() {
	mkdir -p "$PROCFS/4242/fd"
	echo qemu-system-x86 >"$PROCFS/4242/comm"
	ln -s /dev/vfio/13 "$PROCFS/4242/fd/27"
	expect_refusal 3 '4242 qemu-system-x86 /dev/vfio/13' "$REBIND" unbind 0000:04:00.0
	rm -rf "$PROCFS/4242"
}
tcase c_unbind_busy "unbind: refused while pid 4242 holds /dev/vfio/13 (exit 3), no change"

c_unbind() {
	local st=0
	run unb "$REBIND" unbind 0000:04:00.0
	[[ $RC == 0 ]] || st=1
	run ung "$REBIND" unbind --group 0000:01:00.1
	[[ $RC == 0 ]] || st=1
	same "$BEFORE_BIND" || st=1
	verdict "$st" "$ERR"
}
tcase c_unbind "unbind (--group): original drivers back, overrides cleared, records gone: tree as before bind"

# unbind --group where giving the second function back fails: the first one
# is put back on vfio-pci with its record, so a retry still knows its driver.
c_unbind_fail() {
	local st=0 before
	"$REBIND" bind --group 0000:01:00.0 2>/dev/null
	before=$(snap)
	FAKE_FAIL_WRITE="bus/pci/drivers_probe 0000:01:00.1" FAKE_FAIL_ONCE=$WORK/failed-once \
		refused 1 'all changes were rolled back' "$REBIND" unbind --group 0000:01:00.0 || st=1
	[[ $(cat "$VFIO_CORE_STATEDIR/pci/0000:01:00.0" 2>/dev/null) == $'driver=e1000e\noverride=' ]] || {
		st=1
		DIAG+=("the first device's record is gone")
	}
	run ung2 "$REBIND" unbind --group 0000:01:00.0
	[[ $RC == 0 && $(readlink "$SYSFS/bus/pci/devices/0000:01:00.0/driver") == */e1000e &&
		$(readlink "$SYSFS/bus/pci/devices/0000:01:00.1/driver") == */e1000e &&
		$(cat "$SYSFS/bus/pci/devices/0000:01:00.0/driver_override") == '(null)' ]] || {
		st=1
		DIAG+=("retry: rc=$RC" "$ERR")
	}
	same "$BEFORE_BIND" || st=1
	verdict "$st"
}
tcase c_unbind_fail "unbind --group, second device's probe fails: exit 1, first device back on vfio-pci with its record (nothing changed); the retry gives both back to e1000e"

# A full disk: the helpers' own writes fail (file size limit 0, SIGXFSZ
# ignored: EFBIG, as ENOSPC would); sysfs writes are not file writes.
c_full_disk() {
	local st=0 before
	before=$(snap)
	# stderr through a pipe: the limit would stop the messages to a file too
	set +e
	bash -c "trap '' XFSZ; ulimit -S -f 0; exec \"\$0\" \"\$@\"" \
		"$REBIND" bind 0000:04:00.0 2>&1 >/dev/null | cat >"$WORK/full.err"
	RC=${PIPESTATUS[0]}
	set -e
	ERR=$(<"$WORK/full.err")
	[[ $RC == 1 ]] && grep -q 'cannot write the journal' <<<"$ERR" &&
		grep -q 'all changes were rolled back' <<<"$ERR" || st=1
	same "$before" || st=1
	[[ $(readlink "$SYSFS/bus/pci/devices/0000:04:00.0/driver") == */igb ]] || st=1
	verdict "$st" "rc=$RC" "$ERR"
}
tcase c_full_disk "bind with a full disk: exit 1, nothing changed, the device stays on its driver"

# The record of the original driver cannot be written: fatal, rolled back.
c_record_blocked() {
	local st=0
	mkdir -p "$VFIO_CORE_STATEDIR/pci/0000:04:00.0"
	refused 1 'cannot record the original driver of 0000:04:00.0' \
		"$REBIND" bind 0000:04:00.0 || st=1
	rmdir "$VFIO_CORE_STATEDIR/pci/0000:04:00.0"
	verdict "$st"
}
tcase c_record_blocked "bind when the record cannot be written: exit 1, nothing changed"

c_args() {
	local st=0 before
	before=$(snap)
	expect 2 'bind takes exactly one PCI_ADDR' "$REBIND" bind 0000:04:00.0 0000:02:00.0 || st=1
	expect 2 'unbind takes exactly one' "$REBIND" unbind 0000:04:00.0 x || st=1
	expect 2 'save takes exactly one FILE' "$REBIND" save "$WORK/x.json" "$WORK/y.json" || st=1
	expect 2 'restore takes exactly one FILE' "$REBIND" restore "$S0" "$S0" || st=1
	expect 2 'check takes exactly one FILE' "$REBIND" check "$S0" x || st=1
	expect 2 'recover takes no arguments' "$REBIND" recover x || st=1
	expect 2 'bind takes exactly one PCI_ADDR \(got 0' "$REBIND" bind || st=1
	expect 2 'unknown command' "$REBIND" frobnicate || st=1
	same "$before" || st=1
	[[ ! -e $WORK/x.json && ! -e $WORK/y.json ]] || st=1
	verdict "$st"
}
tcase c_args "exact arguments: extra or missing ones (bind A B, save F G, restore F F, check F X, recover X, bind) are usage errors (exit 2), nothing changed"

# ------------------------------------------------------------ driverctl

c_driverctl_other() {
	mkdir -p "$ETCDIR/driverctl.d"
	echo igb >"$ETCDIR/driverctl.d/pci-0000:04:00.0"
	expect_refusal 3 'driverctl has a persistent override to igb' "$REBIND" bind 0000:04:00.0
	rm -r "$ETCDIR/driverctl.d"
}
tcase c_driverctl_other "bind: driverctl's persistent override to igb (/etc/driverctl.d) is respected (exit 3), no change"

# driverctl list-overrides lists every driver_override (ours, libvirt's)
# with the bound driver: it is never asked.
c_driverctl_notasked() {
	local st=0
	mkdir -p "$ROOT/pathbin"
	cat >"$ROOT/pathbin/driverctl" <<EOF
#!/bin/bash
echo "driverctl \$*" >>"$ROOT/driverctl.log"
echo "0000:03:00.0 vfio-pci"
echo "0000:04:00.0 igb"
EOF
	chmod +x "$ROOT/pathbin/driverctl"
	PATH=$ROOT/pathbin:$PATH run dsave "$REBIND" save "$WORK/dctl.json"
	[[ $RC == 0 ]] || st=1
	jq -e 'all(.pci[]; .driverctl == "")' "$WORK/dctl.json" >/dev/null || st=1
	PATH=$ROOT/pathbin:$PATH run dbind "$REBIND" bind 0000:04:00.0
	[[ $RC == 0 ]] || st=1
	PATH=$ROOT/pathbin:$PATH run dunbind "$REBIND" unbind 0000:04:00.0
	[[ $RC == 0 ]] || st=1
	[[ ! -e $ROOT/driverctl.log ]] || st=1
	same "$BEFORE_BIND" || st=1
	verdict "$st" "$ERR" "$(cat "$ROOT/driverctl.log" 2>/dev/null)"
}
tcase c_driverctl_notasked "driverctl list-overrides (which misattributes every driver_override) is never run: save records no driverctl override, bind/unbind unaffected"

# driverctl's own override to vfio-pci: kept, the device only probed.
c_driverctl_vfio() {
	local st=0 before
	mkdir -p "$ETCDIR/driverctl.d"
	echo vfio-pci >"$ETCDIR/driverctl.d/pci-0000:04:00.0"
	w bus/pci/devices/0000:04:00.0/driver_override vfio-pci
	w bus/pci/drivers/igb/unbind 0000:04:00.0
	w bus/pci/drivers_probe 0000:04:00.0
	"$REBIND" save "$WORK/dctl2.json" 2>/dev/null
	jq -e '.pci[] | select(.address == "0000:04:00.0") | .driverctl == "vfio-pci"' \
		"$WORK/dctl2.json" >/dev/null || st=1
	w bus/pci/drivers/vfio-pci/unbind 0000:04:00.0
	before=$(snap)
	: >"$FAKE_WRITE_LOG"
	run drest "$REBIND" restore "$WORK/dctl2.json"
	[[ $RC == 0 && $(readlink "$SYSFS/bus/pci/devices/0000:04:00.0/driver") == */vfio-pci ]] || st=1
	! grep -q '0000:04:00.0/driver_override' "$FAKE_WRITE_LOG" || st=1
	expect_refusal 3 "driverctl has a persistent override to vfio-pci;.*unset-override" \
		"$REBIND" unbind 0000:04:00.0
	[[ $RES == pass ]] || st=1
	# back as the case found it
	rm -f "$ETCDIR/driverctl.d/pci-0000:04:00.0"
	rmdir "$ETCDIR/driverctl.d"
	w bus/pci/drivers/vfio-pci/unbind 0000:04:00.0
	w bus/pci/devices/0000:04:00.0/driver_override ''
	w bus/pci/drivers_probe 0000:04:00.0
	same "$BEFORE_BIND" || st=1
	verdict "$st" "$ERR" "$(cat "$FAKE_WRITE_LOG")"
}
tcase c_driverctl_vfio "driverctl's own override to vfio-pci: saved, restore only probes (driver_override never written), unbind refused (exit 3)"

# ------------------------------------------------------------ mdevctl

# mdevctl_def PARENT UUID TYPE START ATTRS-JSON: an mdevctl definition file
mdevctl_def() {
	mkdir -p "$ETCDIR/mdevctl.d/$1"
	jq -n --arg t "$3" --arg s "$4" --argjson a "$5" \
		'{mdev_type: $t, start: $s, attrs: $a}' >"$ETCDIR/mdevctl.d/$1/$2"
}

c_mdevctl_start() {
	local st=0
	mdevctl_def 0.0.0313 "$U_CCW" vfio_ccw-io manual '[]'
	"$REBIND" save "$WORK/state-mdevctl.json" 2>/dev/null
	w "bus/mdev/devices/$U_CCW/remove" 1
	: >"$FAKE_MDEVCTL_LOG"
	run mctl "$REBIND" restore "$WORK/state-mdevctl.json"
	[[ $RC == 0 && -e $SYSFS/bus/mdev/devices/$U_CCW ]] &&
		grep -q "mdevctl start --uuid $U_CCW" "$FAKE_MDEVCTL_LOG" &&
		jq -e --arg u "$U_CCW" '.mdev[] | select(.uuid == $u) | .mdevctl_defined' \
			"$WORK/state-mdevctl.json" >/dev/null
	verdict $? "rc=$RC" "$ERR" "$(cat "$FAKE_MDEVCTL_LOG")"
}
tcase c_mdevctl_start "restore: an mdev mdevctl defines (/etc/mdevctl.d) is started with mdevctl start"

# mdevctl's udev rule starts the "auto" mdevs of a parent as it registers,
# concurrently with a restore: an mdev active with the saved type and
# attributes is success.
c_mdevctl_auto() {
	local st=0
	mdevctl_def matrix "$U_AP" vfio_ap-passthrough auto \
		'[{"assign_adapter": "3"}, {"assign_adapter": "60"}, {"assign_domain": "4"},
		  {"assign_domain": "71"}, {"assign_control_domain": "71"}, {"assign_control_domain": "84"}]'
	"$REBIND" save "$WORK/state-auto.json" 2>/dev/null
	w "bus/mdev/devices/$U_AP/remove" 1
	cat >"$ROOT/udev-hook" <<EOF
#!/bin/bash
"$MDEVCTL" start-parent-mdevs matrix
EOF
	chmod +x "$ROOT/udev-hook"
	: >"$FAKE_WRITE_LOG"
	FAKE_UDEV_HOOK=$ROOT/udev-hook run auto "$REBIND" restore "$WORK/state-auto.json"
	[[ $RC == 0 ]] || st=1
	saved_as "$WORK/state-auto.json" || st=1
	[[ -e $ROOT/udev-hook.ran ]] || st=1
	grep -q 'start-parent-mdevs matrix' "$FAKE_MDEVCTL_LOG" || st=1
	verdict "$st" "rc=$RC" "$ERR" "$(cat "$FAKE_MDEVCTL_LOG")"
}
tcase c_mdevctl_auto "restore: an auto mdev that mdevctl's udev rule starts as the restore begins is kept (exit 0, state identical)"

# The same race at the create: the mdev appears between the check and the
# write (EEXIST).
c_mdev_race() {
	rm -rf "$ETCDIR/mdevctl.d"
	w "bus/mdev/devices/$U_AP/remove" 1
	FAKE_RACE_CREATE=$U_AP FAKE_RACE_AP="assign_adapter 3 assign_domain 4" \
		run race "$REBIND" restore "$WORK/state-auto.json"
	"$REBIND" save "$WORK/state-race.json" 2>/dev/null
	[[ $RC == 0 ]] && grep -q "appeared meanwhile" <<<"$ERR" &&
		diff <(canon "$WORK/state-auto.json" | jq '.mdev[].mdevctl_defined = false') \
			<(canon "$WORK/state-race.json") >/dev/null
	verdict $? "rc=$RC" "$ERR"
}
tcase c_mdev_race "restore: an mdev created by another process between the check and the create (EEXIST) is kept and completed (exit 0)"
