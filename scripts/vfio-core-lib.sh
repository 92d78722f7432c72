# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-core-lib.sh: what vfio-swap and vfio-rebind share, sourced by both:
# exit codes and messages, the helpers' lock, the transaction journal with
# its rollback on failure, signals and re-runs, and the scan for processes
# holding vfio files.
#
# A transaction (a swap, a restore, a bind, an unbind) is a list of undo
# steps. Each step is appended to the list, and the list written to the
# journal STATEDIR/journal-TOOL, before the change it undoes is made, so
# that a run that dies at any point (an error, INT/TERM/HUP, even SIGKILL)
# leaves a journal from which the next run of either tool rolls it back
# before doing anything else. Undo steps are idempotent: each one puts a
# thing back in a given state, whether or not its change was made.
#
# The tool sets PROG and JOURNAL_NAME and defines undo_one STEP-WORDS...
# (one undo step; returns non-zero if it failed), recover_pending (roll back
# what interrupted runs left, in the right order) and tool_cleanup (run at
# exit).

export LC_ALL=C

# shellcheck disable=SC2034 # used by the tools
E_OK=0
E_ERR=1
E_USAGE=2
E_REFUSED=3

STATEDIR=${VFIO_CORE_STATEDIR:-/run/vfio-core}
LOCKFILE=${VFIO_CORE_LOCKFILE:-$STATEDIR/lock}
LOCK_TIMEOUT=${VFIO_CORE_LOCK_TIMEOUT:-60}
[[ $LOCK_TIMEOUT =~ ^[0-9]{1,6}$ ]] || LOCK_TIMEOUT=60
UDEVADM=${UDEVADM:-udevadm}
JOURNAL_FORMAT=vfio-core-journal/1
DRY_RUN=0

# msg TEXT...: one message on stderr; control characters that a file or a
# state file could smuggle in (terminal escapes) are dropped.
msg() {
	printf '%s: %s\n' "$PROG" "$*" | tr -d '\000-\010\013-\037\177' >&2
}
die() {
	msg "error: $*"
	exit "$E_ERR"
}
bad() {
	msg "error: $*"
	exit "$E_USAGE"
}
refuse() {
	msg "refused: $*"
	exit "$E_REFUSED"
}

have() { command -v "$1" >/dev/null 2>&1; }

read_attr() {
	local v=''
	if [[ -r $1 ]]; then
		v=$(<"$1") || v=''
	fi
	printf '%s' "$v"
}

# settle: wait until udev has handled what the kernel announced (module
# loads register mdev parents, and mdevctl's udev rule starts the "auto"
# mdevs of a parent that registers), where udev runs.
settle() {
	((DRY_RUN)) && return 0
	have "$UDEVADM" || return 0
	"$UDEVADM" settle --timeout=60 ||
		msg "warning: udevadm settle timed out; carrying on"
}

# ------------------------------------------------------------ the lock
#
# One lock for every command of both tools that changes something (and,
# shared, for save and check): flock(1) on LOCKFILE, in STATEDIR, which only
# root can write (a lock in a world-writable directory could be taken by any
# user). A second instance waits for the first, up to LOCK_TIMEOUT seconds,
# then refuses (exit 3) naming the holder. A tool that vfio-swap runs (its
# save and restore) inherits the open lock file and so already holds the
# lock: flock(2) locks belong to the open file, which parent and child
# share. The lock is held until the last process of a transaction exits.

LOCK_FD=''
# shellcheck disable=SC2034 # used by the tools
LOCK_ADOPTED=0

lock_holder() {
	local h=''
	[[ -r $LOCKFILE ]] && h=$(head -c 200 "$LOCKFILE" | head -n 1)
	h=${h//[^[:print:]]/}
	printf '%s' "${h:-unknown (no holder recorded)}"
}

# lock_take x|s: the helpers' lock, exclusive or shared
lock_take() {
	local mode=$1 fd=${VFIO_CORE_LOCK_FD:-} tries=0 old
	# Our parent's lock: flock on the same open file is no new lock. Always
	# -x here: asking for -s would turn the parent's lock into a shared one.
	if [[ $fd =~ ^[0-9]+$ && /dev/fd/$fd -ef $LOCKFILE ]] && flock -n -x "$fd"; then
		LOCK_FD=$fd
		# shellcheck disable=SC2034 # used by the tools
		LOCK_ADOPTED=1
		return 0
	fi
	if [[ ! -d $STATEDIR ]]; then
		(umask 022 && mkdir -p "$STATEDIR") || die "cannot create $STATEDIR"
	fi
	old=$(umask)
	umask 077
	if ! exec {LOCK_FD}>>"$LOCKFILE"; then
		umask "$old"
		die "cannot open the lock file $LOCKFILE"
	fi
	umask "$old"
	while ! flock -n "-$mode" "$LOCK_FD"; do
		((tries)) || msg "waiting for the vfio-core lock $LOCKFILE, held by $(lock_holder)"
		if ((tries >= LOCK_TIMEOUT * 5)); then
			refuse "another vfio-core helper still holds $LOCKFILE after" \
				"${LOCK_TIMEOUT}s ($(lock_holder)); nothing was changed"
		fi
		sleep 0.2
		tries=$((tries + 1))
	done
	export VFIO_CORE_LOCK_FD=$LOCK_FD
	if [[ $mode == x ]]; then
		# who holds it, for the message of a waiting instance
		printf '%s %s (since %s)\n' "$$" "$PROG ${CMDLINE:-}" "$(date '+%F %T')" \
			2>/dev/null >"$LOCKFILE" ||
			msg "warning: cannot record this process in $LOCKFILE"
	fi
}

# ------------------------------------------------------------ the journal

TXN=0
TXN_DESC=''
TXN_START=''
UNDO=()
JOURNAL=$STATEDIR/journal-$JOURNAL_NAME

# Undo steps are words: enc/dec make any value one word ('-' is empty).
enc() {
	local s=$1
	[[ -n $s ]] || {
		printf -- -
		return 0
	}
	s=${s//%/%25}
	s=${s// /%20}
	s=${s//$'\t'/%09}
	s=${s//$'\n'/%0A}
	[[ $s == - ]] && s=%2D
	printf '%s' "$s"
}
dec() {
	local s=$1
	[[ $s == - ]] && return 0
	s=${s//%2D/-}
	s=${s//%0A/$'\n'}
	s=${s//%09/$'\t'}
	s=${s//%20/ }
	s=${s//%25/%}
	printf '%s' "$s"
}

# journal_write FILE: the open transaction's undo list as FILE, atomically
journal_write() {
	local f=$1 text s
	text="$JOURNAL_FORMAT"$'\n'"pid $$"$'\n'"command $TXN_DESC"$'\n'"started $TXN_START"$'\n'
	for s in "${UNDO[@]}"; do
		text+="undo $s"$'\n'
	done
	# one write, whose status is the status of the whole file
	if printf '%s' "$text" 2>/dev/null >"$f.new" && mv -f -- "$f.new" "$f" 2>/dev/null; then
		return 0
	fi
	rm -f -- "$f.new" 2>/dev/null
	return 1
}

journal_sync() {
	((DRY_RUN)) && return 0
	journal_write "$JOURNAL" && return 0
	# A change we cannot journal is a change we do not make.
	fail_rollback "cannot write the journal $JOURNAL (is $STATEDIR full?)"
}

# txn_begin DESC: open a transaction; nothing has been changed yet
txn_begin() {
	TXN_DESC=$1
	TXN_START=$(date '+%F %T')
	UNDO=()
	TXN=1
	journal_sync
}

# undo_push STEP...: STEP (words) undoes the change that comes next
undo_push() {
	local w s=''
	for w in "$@"; do
		s+="${s:+ }$(enc "$w")"
	done
	UNDO+=("$s")
	journal_sync
}

# undo_pop: the change that undo_push announced was not made by us
undo_pop() {
	unset 'UNDO[${#UNDO[@]}-1]'
	journal_sync
}

txn_commit() {
	TXN=0
	UNDO=()
	((DRY_RUN)) && return 0
	rm -f -- "$JOURNAL" ||
		die "the changes are made, but the journal $JOURNAL cannot be" \
			"removed; remove it by hand, or the next run rolls them back"
}

# undo_all: run the undo steps, newest first; those that fail stay in the
# journal. Returns non-zero if any failed.
undo_all() {
	local i rc=0 w
	local -a failed=() words
	((DRY_RUN)) && return 0
	for ((i = ${#UNDO[@]} - 1; i >= 0; i--)); do
		read -r -a words <<<"${UNDO[i]}"
		for w in "${!words[@]}"; do
			words[w]=$(dec "${words[w]}")
		done
		msg "rolling back: ${words[*]}"
		if ! undo_one "${words[@]}"; then
			msg "ROLLBACK STEP FAILED: ${words[*]}"
			failed=("${UNDO[i]}" "${failed[@]}")
			rc=1
		fi
	done
	UNDO=("${failed[@]}")
	if ((rc)); then
		journal_write "$JOURNAL" ||
			msg "cannot write the failed steps back to $JOURNAL"
	else
		rm -f -- "$JOURNAL" || msg "cannot remove $JOURNAL"
	fi
	return "$rc"
}

# txn_abort: roll back the open transaction (once) and say how it went
txn_abort() {
	((TXN)) || return 0
	TXN=0
	if undo_all; then
		msg "all changes were rolled back"
	else
		msg "ROLLBACK INCOMPLETE: the steps above failed; they stay in" \
			"$JOURNAL: fix the cause and run '$PROG recover'"
	fi
}

# fail_rollback MSG: undo everything, then exit 1
fail_rollback() {
	trap '' INT TERM HUP
	msg "error: $*"
	txn_abort
	exit "$E_ERR"
}

# on_signal NAME NUMBER: INT, TERM and HUP roll back like a failure; the
# rollback itself is not interruptible (SIGKILL leaves the journal).
on_signal() {
	trap '' INT TERM HUP
	if ((TXN)); then
		msg "interrupted by SIG$1: rolling back"
		txn_abort
	else
		msg "interrupted by SIG$1; nothing was changed"
	fi
	exit $((128 + $2))
}

on_exit() {
	local rc=$?
	trap '' INT TERM HUP
	if ((TXN)); then
		msg "error: stopped unexpectedly (exit $rc) in the middle of a change: rolling back"
		txn_abort
		rc=$E_ERR
	fi
	tool_cleanup
	exit "$rc"
}

txn_traps() {
	trap 'on_signal INT 2' INT
	trap 'on_signal TERM 15' TERM
	trap 'on_signal HUP 1' HUP
	trap on_exit EXIT
}

# journal_load FILE: J_PID J_CMD J_START and J_UNDO from a journal
journal_load() {
	local f=$1 line first=1
	J_PID='' J_CMD='' J_START=''
	J_UNDO=()
	while IFS= read -r line || [[ -n $line ]]; do
		if ((first)); then
			[[ $line == "$JOURNAL_FORMAT" ]] ||
				die "$f is not a vfio-core journal; look at it and remove it by hand"
			first=0
			continue
		fi
		case $line in
		'pid '*) J_PID=${line#pid } ;;
		'command '*) J_CMD=${line#command } ;;
		'started '*) J_START=${line#started } ;;
		'undo '*) J_UNDO+=("${line#undo }") ;;
		esac
	done <"$f"
	((!first)) || die "$f is empty; remove it by hand"
}

# recover_own: roll back the transaction an interrupted run of this tool
# left in its journal
recover_own() {
	local s
	[[ -e $JOURNAL ]] || return 0
	journal_load "$JOURNAL"
	msg "'$J_CMD' (pid $J_PID, started $J_START) was interrupted; rolling back what it began"
	if ((DRY_RUN)); then
		for s in "${J_UNDO[@]}"; do
			printf 'would roll back: %s\n' "$s"
		done
		return 0
	fi
	TXN_DESC=$J_CMD
	TXN_START=$J_START
	UNDO=("${J_UNDO[@]}")
	# a rollback is not interruptible (SIGKILL leaves the journal)
	trap '' INT TERM HUP
	if undo_all; then
		txn_traps
		msg "rolled back the interrupted '$J_CMD'"
		return 0
	fi
	die "ROLLBACK INCOMPLETE of the interrupted '$J_CMD': the steps above" \
		"failed and stay in $JOURNAL; fix the cause and run '$PROG recover'"
}

# ------------------------------------------------------------ processes

# fd_links FIND-TESTS...: "FD TARGET" for the open files of every process
# whose link matches the -lname tests (GNU find; a readlink loop where find
# lacks -lname/-printf, as busybox's does)
fd_links() {
	local fd t pat=() p
	if [[ -z ${VFIO_NO_GNU_FIND:-} ]] &&
		find "$PROCFS" -maxdepth 0 -lname x -o -printf '' 2>/dev/null; then
		find "$PROCFS" -mindepth 3 -maxdepth 3 -path "$PROCFS/[0-9]*/fd/*" \
			\( "$@" \) -printf '%p %l\n' 2>/dev/null
		return 0
	fi
	while (($#)); do
		[[ $1 == -lname ]] && pat+=("$2")
		shift
	done
	for fd in "$PROCFS"/[0-9]*/fd/*; do
		t=$(readlink "$fd" 2>/dev/null) || continue
		for p in "${pat[@]}"; do
			# shellcheck disable=SC2053 # find -lname patterns are globs
			if [[ $t == $p ]]; then
				printf '%s %s\n' "$fd" "$t"
				break
			fi
		done
	done
}

# vfio_holders [GROUP]: "PID COMM FILE" for every open vfio container, group
# or device file and KVM's vfio pseudo device, which pins vfio groups (of
# /dev/vfio/GROUP only, when given)
vfio_holders() {
	local g=${1:-} fd t pid comm
	local -a pat=(-lname '/dev/vfio/*' -o -lname "$DEVFS/vfio/*" -o
		-lname 'anon_inode:\[vfio-device\]' -o -lname 'anon_inode:kvm-vfio')
	[[ -z $g ]] || pat=(-lname "/dev/vfio/$g" -o -lname "$DEVFS/vfio/$g")
	# one find, not a readlink per descriptor: hosts have thousands
	fd_links "${pat[@]}" |
		while read -r fd t; do
			pid=${fd#"$PROCFS"/}
			pid=${pid%%/*}
			comm=$(read_attr "$PROCFS/$pid/comm")
			printf '%s %s %s\n' "$pid" "${comm:-?}" "$t"
		done | sort -k1,1n -k3,3 -u
}
