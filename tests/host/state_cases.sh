# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-rebind's state files: read with jq, old files still load, and
# everything wrong in one is refused by check and by restore before any
# change: numbers past the kernel's limits (2^63, 2^64 too), PCI bridges,
# '.' and '..', trailing newlines, deep nesting, terminal escapes, and
# s390-tools' ap-check rules. Sourced by rebind_test.sh.

ST0=$WORK/st0.json
# what the previous vfio-rebind (a hand-written JSON parser) saved on this
# fake host
OLD=$HERE/state-v1-old.json

# both_refuse RC REGEX FILE: check and restore of FILE exit RC, say REGEX
# and change nothing
both_refuse() {
	local st=0
	refused "$1" "$2" "$REBIND" check "$3" || st=1
	refused "$1" "$2" "$REBIND" restore "$3" || st=1
	return "$st"
}

c_old_format() {
	local st=0
	make_host "$WORK/h2"
	"$REBIND" save "$ST0" 2>/dev/null
	run old "$REBIND" check "$OLD"
	[[ $RC == 0 && $OUT == *'OK, 1 PCI device(s), 4 mdev(s)' ]] || st=1
	break_state
	run oldr "$REBIND" restore "$OLD"
	[[ $RC == 0 ]] || st=1
	saved_as "$ST0" || st=1
	verdict "$st" "rc=$RC" "$ERR"
	break_state
}
tcase c_old_format "a state file the previous vfio-rebind wrote (its layout, one line per device) passes check and restores the same state"

# What the old parser accepted: any valid JSON of that shape: escapes, null
# for an empty string, optional fields left out, other whitespace.
c_old_variants() {
	local st=0 v
	jq -c . "$OLD" >"$WORK/v-compact.json"
	sed -e 's/"type": "vfio_ap-passthrough"/"type": "vfio_ap\\u002dpassthrough"/' \
		-e 's|"parent_path": "devices/vfio_ap/matrix"|"parent_path": "devices\\/vfio_ap\\/matrix"|' \
		"$OLD" >"$WORK/v-escapes.json"
	sed -e 's/"original_driver": ""/"original_driver": null/' \
		-e 's/, "driverctl": ""//' -e 's/, "mdevctl_defined": false//' \
		-e 's/"vfio_version": "0.3",//' "$OLD" >"$WORK/v-optional.json"
	sed -e 's/, /,\n\t\t  /g' -e 's/{/{ /g' "$OLD" >"$WORK/v-space.json"
	for v in compact escapes optional space; do
		run var "$REBIND" check "$WORK/v-$v.json"
		[[ $RC == 0 && $OUT == *'OK, 1 PCI device(s), 4 mdev(s)' ]] || {
			st=1
			DIAG+=("$v: rc=$RC" "$ERR")
		}
	done
	run varr "$REBIND" restore "$WORK/v-escapes.json"
	[[ $RC == 0 ]] || st=1
	saved_as "$ST0" || st=1
	verdict "$st" "$ERR"
	break_state
}
tcase c_old_variants "old files still load: one line, \\u and \\/ escapes, null and missing optional fields, other whitespace"

# Numbers at and past 2^63 wrapped around in bash arithmetic: a 64-bit
# adapter number passed check and restore wrote 0xffffffffffffffff.
c_big_numbers() {
	local st=0 n l
	for n in 9223372036854775808 18446744073709551616 18446744073709551619; do
		for l in adapters domains control_domains; do
			sedit "$OLD" "0,/\"$l\": \\[/s//\"$l\": [$n, /" "$WORK/big.json"
			both_refuse 2 'out of range' "$WORK/big.json" || st=1
		done
	done
	verdict "$st"
}
tcase c_big_numbers "AP numbers 2^63, 2^64 and 2^64+3 (adapters, domains, control domains) refused by check and restore (exit 2), nothing changed"

c_bridge_entry() {
	edit "$OLD" '.pci += [.pci[0] | .address = "0000:00:1c.0"]' "$WORK/bridge.json"
	both_refuse 2 '0000:00:1c.0 is a PCI bridge' "$WORK/bridge.json"
	verdict $?
}
tcase c_bridge_entry "a PCI bridge (0000:00:1c.0) in the state file: refused by check and restore (exit 2), pcieport left alone"

c_dot_names() {
	local st=0 v
	for v in . ..; do
		edit "$OLD" ".pci[0].original_driver = \"$v\"" "$WORK/dot.json"
		both_refuse 2 'original_driver: bad driver name' "$WORK/dot.json" || st=1
		edit "$OLD" "(.mdev[] | select(.type == \"mtty-2\") | .type) = \"$v\"" "$WORK/dot.json"
		both_refuse 2 'type: bad mdev type' "$WORK/dot.json" || st=1
	done
	edit "$OLD" '.pci[0].driver = "vfio-pci/.."' "$WORK/dot.json"
	both_refuse 2 'is not a vfio PCI driver' "$WORK/dot.json" || st=1
	verdict "$st"
}
tcase c_dot_names "'.' and '..' as driver and mdev type names refused (exit 2), nothing changed"

c_trailing_nl() {
	local st=0
	edit "$OLD" '.pci[0].address += "\n"' "$WORK/nl.json"
	both_refuse 2 'bad PCI address "0000:03:00.0\\n"' "$WORK/nl.json" || st=1
	edit "$OLD" '(.mdev[] | select(.type == "mtty-2") | .type) += "\n"' "$WORK/nl.json"
	both_refuse 2 'bad mdev type "mtty-2\\n"' "$WORK/nl.json" || st=1
	edit "$OLD" '.kernel += "\n"' "$WORK/nl.json"
	both_refuse 2 'saved under kernel "6.1.0-57-amd64\\n"' "$WORK/nl.json" || st=1
	edit "$OLD" '.host.hostname += "\n\n"' "$WORK/nl.json"
	both_refuse 2 'saved on another host' "$WORK/nl.json" || st=1
	verdict "$st"
}
tcase c_trailing_nl "trailing newlines in JSON strings are not stripped: refused (exit 2), nothing changed"

c_deep() {
	local st=0
	{
		printf '{"format": "vfio-core-state/1", "pci": [], "mdev": [], "x": '
		printf '[%.0s' $(seq 10000)
		printf ']%.0s' $(seq 10000)
		printf '}\n'
	} >"$WORK/deep.json"
	both_refuse 2 'malformed JSON.*depth' "$WORK/deep.json" || st=1
	verdict "$st"
}
tcase c_deep "JSON nested 10,000 deep: refused as malformed (exit 2), no crash, nothing changed"

c_escapes() {
	local st=0
	edit "$OLD" '.pci[0].address = "\u001b[31m\u001b]0;owned\u00070000:03:00.0\u009b2J"' "$WORK/esc.json"
	both_refuse 2 'bad PCI address "\\u001b\[31m\\u001b\]0;owned\\u00070000:03:00.0\\u009b2J"' \
		"$WORK/esc.json" || st=1
	if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$WORK/expect.err" ||
		LC_ALL=C grep -q $'\xc2' "$WORK/expect.err"; then
		st=1
		DIAG+=("raw control characters in the message")
	fi
	verdict "$st"
}
tcase c_escapes "terminal escapes in a state file (\\u001b, BEL, C1 CSI) are shown escaped, never raw; refused (exit 2)"

c_shapes() {
	local st=0
	echo '[]' >"$WORK/shape.json"
	both_refuse 2 'not a JSON object' "$WORK/shape.json" || st=1
	cat "$OLD" "$OLD" >"$WORK/shape.json"
	both_refuse 2 'more than one JSON value' "$WORK/shape.json" || st=1
	edit "$OLD" '.pci = {}' "$WORK/shape.json"
	both_refuse 2 'missing pci or mdev list' "$WORK/shape.json" || st=1
	edit "$OLD" '.pci[0].address = 3' "$WORK/shape.json"
	both_refuse 2 'address has the wrong type' "$WORK/shape.json" || st=1
	edit "$OLD" '.mdev[0].ap.adapters = "3"' "$WORK/shape.json"
	both_refuse 2 'adapters is not a list' "$WORK/shape.json" || st=1
	edit "$OLD" '.mdev[0].ap.adapters = ["3"]' "$WORK/shape.json"
	both_refuse 2 'is not an AP adapter' "$WORK/shape.json" || st=1
	edit "$OLD" '.mdev[0].ap.adapters = [3.5]' "$WORK/shape.json"
	both_refuse 2 'is not an AP adapter' "$WORK/shape.json" || st=1
	: >"$WORK/shape.json"
	both_refuse 2 'empty state file' "$WORK/shape.json" || st=1
	verdict "$st"
}
tcase c_shapes "wrong shapes (not an object, two values, pci not a list, wrong types, 3.5, empty file) refused (exit 2), nothing changed"

# ------------------------------------------------------------ ap-check

# The fake kernel refuses what 6.1's vfio_ap refuses, so the checks below
# are what stands between a bad file and a half-done restore.
c_fake_ap_rules() {
	local st=0 err
	"$REBIND" restore "$ST0" 2>/dev/null
	err=$(w "bus/mdev/devices/$U_AP2/assign_adapter" 4 2>&1) && st=1
	[[ $err == *'Cannot assign requested address'* ]] || st=1
	err=$(w "bus/mdev/devices/$U_AP2/assign_adapter" 3 2>&1) || st=1
	err=$(w "bus/mdev/devices/$U_AP2/assign_domain" 4 2>&1) && st=1
	[[ $err == *'Address already in use'* ]] || st=1
	w "bus/mdev/devices/$U_AP2/unassign_adapter" 3
	verdict "$st" "$err"
	break_state
}
tcase c_fake_ap_rules "the fake vfio_ap refuses as 6.1 does: an APQN the AP bus masks leave to zcrypt (EADDRNOTAVAIL), an APQN of another mdev (EADDRINUSE)"

c_apqn_twice() {
	edit "$OLD" "(.mdev[] | select(.uuid == \"$U_AP2\") | .ap) = {adapters: [3], domains: [4, 5], control_domains: []}" \
		"$WORK/twice.json"
	both_refuse 2 "APQN 03.0004 would be in mdev $U_AP and in mdev $U_AP2;.*ap-check" "$WORK/twice.json"
	verdict $?
}
tcase c_apqn_twice "ap-check: an APQN in two mdevs of the file refused by check and restore (exit 2), nothing changed"

c_apqn_host() {
	local st=0 x=5eed0000-0000-4000-8000-000000000001
	w devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create "$x"
	w "bus/mdev/devices/$x/assign_adapter" 60
	w "bus/mdev/devices/$x/assign_domain" 71
	both_refuse 2 "APQN 3c.0047 would be in mdev $U_AP and in mdev $x \(on this host\)" "$OLD" || st=1
	w "bus/mdev/devices/$x/remove" 1
	verdict "$st"
}
tcase c_apqn_host "ap-check: an APQN already in an mdev on the host refused by check and restore (exit 2), nothing changed"

c_apqn_reserved() {
	edit "$OLD" "(.mdev[] | select(.uuid == \"$U_AP2\") | .ap.adapters) = [4]" "$WORK/reserved.json"
	both_refuse 2 "mdev $U_AP2: APQN 04.0005 not reserved for vfio_ap" "$WORK/reserved.json"
	verdict $?
}
tcase c_apqn_reserved "ap-check: an APQN that apmask/aqmask leave to zcrypt refused by check and restore (exit 2), nothing changed"

c_usage_domain() {
	edit "$OLD" "(.mdev[] | select(.uuid == \"$U_AP2\") | .ap) = {adapters: [10], domains: [], control_domains: [7]}" \
		"$WORK/usage.json"
	both_refuse 2 "mdev $U_AP2 would have control domains \(7\) but no usage domain" "$WORK/usage.json"
	verdict $?
}
tcase c_usage_domain "ap-check: an mdev with control domains and no usage domain refused by check and restore (exit 2), nothing changed"
