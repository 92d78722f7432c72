# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-rebind's transactions: INT, TERM and HUP in the middle of a restore,
# a bind and an unbind roll back; a run killed outright is rolled back by
# the next one; two at once end consistent; the lock waits, then refuses;
# the s390-tools AP lock is broken safely when stale and never through a
# predictable name. Sourced by rebind_test.sh.

TS0=$WORK/ts0.json
TAP=$WORK/ts-ap.json

# sig_case SIGNAL SLOW-WRITE-GLOB CMD...: CMD interrupted by SIGNAL while
# the write SLOW-WRITE-GLOB is under way exits 128+N, says it rolled back,
# and leaves the tree as it found it, with no journal
sig_case() {
	local sig=$1 glob=$2 before st=0
	shift 2
	before=$(snap)
	interrupt "$sig" write "$glob" "$@" || st=1
	grep -q 'all changes were rolled back' <<<"$ERR" || st=1
	same "$before" || st=1
	[[ ! -e $VFIO_CORE_STATEDIR/journal-rebind ]] || st=1
	verdict "$st" "$ERR"
}

c_sig_restore_int() {
	make_host "$WORK/h3"
	"$REBIND" save "$TS0" 2>/dev/null
	jq '.pci = [] | .mdev |= map(select(.type | startswith("vfio_ap")))' "$TS0" >"$TAP"
	break_state
	sig_case INT "bus/mdev/devices/$U_AP/assign_domain *" "$REBIND" restore "$TS0"
}
tcase c_sig_restore_int "restore interrupted by SIGINT after a PCI bind, an mdev create and two assignments: exit 130, all rolled back, no journal"

c_sig_restore_term() {
	sig_case TERM "bus/mdev/devices/$U_AP/assign_control_domain *" "$REBIND" restore "$TS0"
}
tcase c_sig_restore_term "restore interrupted by SIGTERM: exit 143, all rolled back"

c_sig_restore_hup() {
	sig_case HUP "devices/css0/0.0.0313/mdev_supported_types/vfio_ccw-io/create *" \
		"$REBIND" restore "$TS0"
}
tcase c_sig_restore_hup "restore interrupted by SIGHUP: exit 129, all rolled back"

c_sig_bind() {
	sig_case TERM "bus/pci/drivers_probe 0000:01:00.1" "$REBIND" bind --group 0000:01:00.0
}
tcase c_sig_bind "bind --group interrupted by SIGTERM at the second function: exit 143, the first one back on e1000e, no record left"

c_sig_unbind() {
	"$REBIND" bind --group 0000:01:00.0 2>/dev/null
	sig_case INT "bus/pci/drivers_probe 0000:01:00.1" "$REBIND" unbind --group 0000:01:00.0
}
tcase c_sig_unbind "unbind --group interrupted by SIGINT at the second function: exit 130, the first one back on vfio-pci with its record"

# wait_unlocked: until no process holds the helpers' lock (an orphan of a
# killed helper may finish its step first)
wait_unlocked() { flock -x "$VFIO_CORE_STATEDIR/lock" true; }

# hold_lock SECONDS: another process holds the helpers' lock; its pid in BG
hold_lock() {
	(
		exec 9>>"$VFIO_CORE_STATEDIR/lock"
		flock -x 9
		exec sleep "$1"
	) &
	BG=$!
	BG_PIDS+=("$BG")
	sleep 0.3
}

c_kill_restore() {
	local st=0
	run un "$REBIND" unbind --group 0000:01:00.0
	[[ $RC == 0 ]] || st=1
	# the mdevs are gone since the signal cases (break_state): a restore
	# has work to do
	TXN_BEFORE=$(snap)
	start_slow write "bus/mdev/devices/$U_AP/assign_domain *" "$REBIND" restore "$TS0" || st=1
	kill -KILL "$BG"
	bg_wait "$BG" slow
	wait_unlocked
	[[ -e $VFIO_CORE_STATEDIR/journal-rebind && -e $SYSFS/bus/mdev/devices/$U_AP ]] || st=1
	run stj "$SWAP" status --json
	jq -e '.transaction | .tool == "vfio-rebind" and .state == "interrupted" and
		(.command | startswith("vfio-rebind restore"))' <<<"$OUT" >/dev/null || {
		st=1
		DIAG+=("status: $OUT")
	}
	verdict "$st" "$ERR"
}
tcase c_kill_restore "restore killed by SIGKILL half-way: the journal stays, status --json shows the interrupted change"

c_recover() {
	local st=0
	run rec "$REBIND" recover
	[[ $RC == 0 ]] && grep -q 'was interrupted; rolling back' <<<"$ERR" || st=1
	same "$TXN_BEFORE" || st=1
	run rec2 "$REBIND" recover
	[[ $RC == 0 ]] && grep -q 'nothing to recover' <<<"$ERR" || st=1
	verdict "$st" "$ERR"
}
tcase c_recover "vfio-rebind recover rolls the killed restore back: tree as before it, journal gone; a second recover has nothing to do"

c_kill_bind() {
	local st=0
	start_slow write "bus/pci/drivers_probe 0000:01:00.1" "$REBIND" bind --group 0000:01:00.0 || st=1
	kill -KILL "$BG"
	bg_wait "$BG" slow
	wait_unlocked
	run rebind "$REBIND" bind --group 0000:01:00.0
	[[ $RC == 0 ]] && grep -q "'vfio-rebind bind 0000:01:00.0 0000:01:00.1' .* was interrupted" <<<"$ERR" || st=1
	[[ $(readlink "$SYSFS/bus/pci/devices/0000:01:00.1/driver") == */vfio-pci &&
		$(cat "$VFIO_CORE_STATEDIR/pci/0000:01:00.0") == $'driver=e1000e\noverride=' &&
		$(cat "$VFIO_CORE_STATEDIR/pci/0000:01:00.1") == $'driver=e1000e\noverride=' ]] || st=1
	run ub "$REBIND" unbind --group 0000:01:00.0
	[[ $RC == 0 ]] || st=1
	same "$TXN_BEFORE" || st=1
	verdict "$st" "$ERR"
}
tcase c_kill_bind "bind killed by SIGKILL half-way: the re-run rolls it back first, then binds; both functions remember e1000e (the unbind gives the tree back)"

c_two_restores() {
	local st=0 p1 p2
	bg_start r1 "$REBIND" restore "$TS0"
	p1=$BG
	bg_start r2 "$REBIND" restore "$TS0"
	p2=$BG
	bg_wait "$p1" r1
	[[ $RC == 0 ]] || st=1
	bg_wait "$p2" r2
	[[ $RC == 0 ]] || st=1
	saved_as "$TS0" || st=1
	verdict "$st" "$ERR"
	break_state
}
tcase c_two_restores "two restores at once: both exit 0, the state is the saved one"

c_lock_busy() {
	local st=0 p
	echo "999 vfio-swap to-ours (since yesterday)" >"$VFIO_CORE_STATEDIR/lock"
	hold_lock 30
	p=$BG
	VFIO_CORE_LOCK_TIMEOUT=1 refused 3 \
		'another vfio-core helper still holds .*lock after 1s \(999 vfio-swap to-ours' \
		"$REBIND" bind 0000:04:00.0 || st=1
	VFIO_CORE_LOCK_TIMEOUT=1 refused 3 'still holds' "$REBIND" check "$TS0" || st=1
	kill "$p"
	wait "$p" 2>/dev/null || true
	verdict "$st"
}
tcase c_lock_busy "a second instance waits for the lock, then refuses (exit 3) naming the holder, nothing changed (bind; check too)"

c_lock_wait() {
	local st=0 p before
	before=$(snap)
	hold_lock 2
	p=$BG
	run lw "$REBIND" bind 0000:04:00.0
	[[ $RC == 0 ]] && grep -q 'waiting for the vfio-core lock' <<<"$ERR" &&
		[[ $(readlink "$SYSFS/bus/pci/devices/0000:04:00.0/driver") == */vfio-pci ]] || st=1
	wait "$p" 2>/dev/null || true
	"$REBIND" unbind 0000:04:00.0 2>/dev/null
	same "$before" || st=1
	verdict "$st" "$ERR"
}
tcase c_lock_wait "a second instance waits while the lock is held, then does its work (exit 0)"

# The s390-tools AP lock, broken when stale by two restores at once that
# do not share the helpers' lock (which would serialise them): 40 trials;
# every vfio_ap write checks that the AP lock names the writer's caller.
c_aplock_overlap() {
	local st=0 t p1 p2 dead overl=0 broken=0 log=$WORK/aplock.log
	: >"$log"
	for ((t = 0; t < 40; t++)); do
		[[ ! -e $SYSFS/bus/mdev/devices/$U_AP ]] || w "bus/mdev/devices/$U_AP/remove" 1
		[[ ! -e $SYSFS/bus/mdev/devices/$U_AP2 ]] || w "bus/mdev/devices/$U_AP2/remove" 1
		bash -c 'exit 0' &
		dead=$!
		wait "$dead" || true
		printf '%d\n' "$dead" >"$VFIO_AP_LOCKFILE"
		mkdir -p "$WORK/sd1" "$WORK/sd2"
		FAKE_AP_LOCK_LOG=$log VFIO_AP_LOCK_TIMEOUT=20 VFIO_CORE_STATEDIR=$WORK/sd1 \
			bg_start ov1 "$REBIND" restore "$TAP"
		p1=$BG
		FAKE_AP_LOCK_LOG=$log VFIO_AP_LOCK_TIMEOUT=20 VFIO_CORE_STATEDIR=$WORK/sd2 \
			bg_start ov2 "$REBIND" restore "$TAP"
		p2=$BG
		bg_wait "$p1" ov1
		[[ $RC == 0 ]] || DIAG+=("trial $t: first restore exit $RC: $ERR")
		broken=$((broken + $(grep -c 'removed stale AP lock' <<<"$ERR" || true)))
		bg_wait "$p2" ov2
		[[ $RC == 0 ]] || DIAG+=("trial $t: second restore exit $RC: $ERR")
		broken=$((broken + $(grep -c 'removed stale AP lock' <<<"$ERR" || true)))
		[[ -s $log ]] && overl=$((overl + 1))
		cat "$log" >>"$WORK/aplock-all.log"
		: >"$log"
		[[ ! -e $VFIO_AP_LOCKFILE ]] || {
			st=1
			DIAG+=("trial $t: AP lock left behind")
		}
	done
	# shellcheck disable=SC2034 # read by the runner
	MORE="40 trials, $overl with overlapping AP lock holders, $broken stale locks broken"
	((overl == 0 && broken == 40)) || st=1
	verdict "$st" "$(head -20 "$WORK/aplock-all.log" 2>/dev/null)"
	"$REBIND" restore "$TS0" 2>/dev/null
}
tcase c_aplock_overlap "stale s390apconfig.lock broken by two restores at once, 40 trials: zero overlaps, each stale lock broken once"

# The old temporary lock name was s390apconfig.lock.PID.vfio-rebind, in the
# world-writable /run/lock: a symlink planted there made root write its PID
# wherever it pointed.
c_aplock_tmpname() {
	local st=0
	break_state
	rm -f "$WORK/victim"
	(
		ln -s "$WORK/victim" "$VFIO_AP_LOCKFILE.$BASHPID.vfio-rebind"
		exec "$REBIND" restore "$TAP"
	) 2>"$WORK/tmpname.err" || st=1
	[[ ! -e $WORK/victim ]] || st=1
	rm -f "$VFIO_AP_LOCKFILE".*.vfio-rebind
	if compgen -G "${VFIO_AP_LOCKFILE%/*}/*" >/dev/null; then
		st=1
		DIAG+=("left in the lock directory: $(ls "${VFIO_AP_LOCKFILE%/*}")")
	fi
	verdict "$st" "$(cat "$WORK/tmpname.err")"
	"$REBIND" restore "$TS0" 2>/dev/null
}
tcase c_aplock_tmpname "AP lock temporaries have unpredictable names (mktemp): a symlink planted at the old name is not written through, nothing left behind"
