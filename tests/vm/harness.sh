# shellcheck shell=bash
# Shared helpers of the QEMU test harness (initramfs.sh, run.sh, check.sh).
# Sourced, never run; sources lib.sh.

harness_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$harness_dir/lib.sh"
# shellcheck disable=SC2034 # for the scripts that source this file
repo_dir=$(cd "$harness_dir/../.." && pwd)

# guest_root ARCH ABI: a tree holding lib/modules/KVER (and, for amd64, the
# image the kernel came from). $GUEST_ROOT overrides it, e.g. for an s390x
# kernel built by tests/vm/s390x-stack.sh.
guest_root() {
	if [ -n "${GUEST_ROOT:-}" ]; then
		echo "$GUEST_ROOT"
	else
		echo "$(abi_dir "$1" "$2")/root"
	fi
}

# guest_kernel ARCH ABI: the kernel image QEMU boots; $GUEST_KERNEL overrides.
guest_kernel() {
	if [ -n "${GUEST_KERNEL:-}" ]; then
		echo "$GUEST_KERNEL"
	elif [ "$(deb_arch "$1")" = amd64 ]; then
		echo "$(abi_dir "$1" "$2")/vmlinux"
	else
		echo "$(guest_root "$1" "$2")/boot/vmlinuz-$(kver "$1" "$2")"
	fi
}

# gcc_for ARCH: the C compiler that builds static guest programs.
gcc_for() {
	case "$(deb_arch "$1")" in
	amd64) echo "${CC:-gcc}" ;;
	s390x) echo s390x-linux-gnu-gcc ;;
	esac
}

# build_guest ARCH OUT: the guest test programs of tests/guest into OUT:
# NAME.c compiled static, NAME.sh installed as NAME.
build_guest() {
	local cc f n out=$2
	cc=$(gcc_for "$1")
	rm -rf "$out"
	mkdir -p "$out"
	for f in "$repo_dir"/tests/guest/*.c; do
		[ -f "$f" ] || continue
		n=${f##*/}
		"$cc" -Wall -Wextra -Werror -O2 -static -o "$out/${n%.c}" "$f" || return 1
	done
	for f in "$repo_dir"/tests/guest/*.sh; do
		[ -f "$f" ] || continue
		n=${f##*/}
		install -m 0755 "$f" "$out/${n%.sh}"
	done
}

# now_ms: a monotonic-enough clock in milliseconds for timing reports.
now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# fmt_ms MS: milliseconds as seconds with one decimal.
fmt_ms() {
	printf '%d.%ds' $(($1 / 1000)) $((($1 % 1000) / 100))
}

# ------------------------------------------------------------------ verdicts
# What a test's TAP and a boot's console must satisfy to pass; shared by
# run.sh (guest tests, boots) and check.sh (host tests).

# Classes of kernel reports, each with the console pattern that names it,
# in the order they are tried (the first match wins: a lockdep report is a
# "WARNING:" too). A test that provokes one on purpose declares it with a
# line "# expect-splat: CLASS" on its TAP channel (see run.sh).
report_classes='
kasan		BUG: KASAN:|KASAN: [a-z-]+ in range
kfence		BUG: KFENCE:
ubsan		UBSAN:
lockdep		possible circular locking dependency|possible recursive locking|inconsistent lock state|suspicious RCU usage|bad unlock balance|held lock freed|lock held when returning to user space|irq lock inversion|-unsafe lock order|Invalid wait context|BUG: MAX_LOCKDEP|DEBUG_LOCKS_WARN_ON|trying to register non-static key|BUG: key [0-9a-f]+ has not been registered
might-sleep	BUG: sleeping function called from invalid context|BUG: scheduling while atomic|BUG: using [a-z_]+\(\) in preemptible|Voluntary context switch within RCU read-side critical section
list-debug	list_(add|del) corruption|list_add double add|list_del double
kmemleak	unreferenced object 0x|new suspected memory leak
hung-task	blocked for more than [0-9]+ seconds
rcu-stall	rcu: INFO:|rcu_[a-z]+ (self-)?detected stall|detected stalls on CPU|rcu_[a-z]+ kthread starved
soft-lockup	BUG: soft lockup|hard LOCKUP|BUG: workqueue lockup
debugobjects	ODEBUG:
panic		Kernel panic - not syncing
oops		Oops|\[#[0-9]+\]|general protection fault|kernel BUG at|Kernel BUG at|BUG: unable to handle|BUG: kernel NULL pointer|Unable to handle kernel
bug		BUG: |BUG [a-z0-9_:.-]+ \((Not tainted|Tainted)
warn		WARNING:|refcount_t: 
'

# report_class_names: the class names, one per line.
report_class_names() {
	awk 'NF { print $1 }' <<<"$report_classes"
}

# console_reports CONSOLE: the kernel reports in a console log, one per
# line: "WINDOW<TAB>PHASE<TAB>CLASS<TAB>LINE". WINDOW is 0 before the first
# test (the boot) and k from the k-th "harness: BEGIN" on; PHASE is "during"
# (between BEGIN and END), "after" (after END) or "end" (after the last
# test, at "harness: FINISH": the end-of-boot checks).
console_reports() {
	awk -v classes="$report_classes" '
		BEGIN {
			n = split(classes, l, "\n")
			for (i = 1; i <= n; i++) {
				if (l[i] == "")
					continue
				k++
				name[k] = l[i]; sub(/[ \t].*/, "", name[k])
				re[k] = l[i]; sub(/^[^ \t]+[ \t]+/, "", re[k])
			}
			win = 0; phase = "during"
		}
		/harness: BEGIN / { win++; phase = "during"; next }
		/harness: END / { phase = "after"; next }
		/harness: FINISH/ { phase = "end"; next }
		{
			for (i = 1; i <= k; i++)
				if ($0 ~ re[i]) {
					line = $0
					gsub(/\t/, " ", line)
					printf "%d\t%s\t%s\t%s\n", win, phase, name[i], line
					break
				}
		}
	' "$1"
}

# tap_judge RC: judges a test's TAP (stdin) and its exit status RC, the
# kselftest/TAP 14 way: the plan "1..N" comes before the first result and N
# results follow, numbered in order; "not ok" and "Bail out!" fail; "ok N -
# what # SKIP why" is a skipped subtest (it needs its reason); "1..0 # SKIP
# why" with no result is a skipped test. Only top-level lines count
# (indented ones are subtests' or YAML). Prints:
#   verdict pass|fail|skip
#   cause TEXT            (each reason it fails; for a skipped test, why)
#   plan N / ran N / skipped N
#   skip N<TAB>WHAT<TAB>WHY   (each skipped subtest)
#   expect CLASS          (each "# expect-splat: CLASS" line)
tap_judge() {
	awk -v rc="$1" -v classes="$(report_class_names | tr '\n' ' ')" '
		function cause(s) { causes[++nc] = s }
		BEGIN { plan = -1; ran = 0; nplans = 0 }
		/^Bail out!/ {
			if (!bailed)
				cause($0)
			bailed = 1
			next
		}
		/^1\.\.[0-9]+/ {
			nplans++
			if (nplans > 1) {
				cause("a second TAP plan (" $0 ")")
				next
			}
			plan = $0; sub(/^1\.\./, "", plan); sub(/[^0-9].*/, "", plan); plan += 0
			if (ran > 0)
				late = "the TAP plan 1.." plan " comes after " ran " results (it must come first)"
			planskip = ""
			if (match($0, /#[ \t]*[Ss][Kk][Ii][Pp][^ \t]*/)) {
				planskip = substr($0, RSTART + RLENGTH)
				sub(/^[ \t]+/, "", planskip)
			}
			next
		}
		/^# expect-splat:/ {
			c = $0; sub(/^# expect-splat:[ \t]*/, "", c); sub(/[ \t].*/, "", c)
			if (index(" " classes " ", " " c " ") && c != "")
				expect[c] = 1
			else
				cause("unknown report class \"" c "\" in \"" $0 "\"")
			next
		}
		/^(not )?ok([ \t]|$)/ {
			ran++
			notok = /^not /
			s = $0; sub(/^(not )?ok[ \t]*/, "", s)
			num = s
			if (sub(/^[0-9]+/, "", s)) {
				sub(/[^0-9].*/, "", num)
				if (num + 0 != ran && !badnum) {
					cause("result numbers out of sequence (ok " num " where " ran " was due)")
					badnum = 1
				}
			}
			sub(/^[ \t]*-?[ \t]*/, "", s)
			what = s; dir = ""
			# the directive: after the first "#" not escaped as "\#"
			p = 0
			for (i = 1; i <= length(s); i++)
				if (substr(s, i, 1) == "#" && (i == 1 || substr(s, i - 1, 1) != "\\")) {
					p = i
					break
				}
			if (p) {
				what = substr(s, 1, p - 1); dir = substr(s, p + 1)
				sub(/[ \t]+$/, "", what); sub(/^[ \t]+/, "", dir)
			}
			if (notok) {
				nfail++
				if (nfail == 1)
					firstfail = ran " - " what
			} else if (dir ~ /^[Ss][Kk][Ii][Pp]/) {
				why = dir; sub(/^[^ \t]*[ \t]*/, "", why)
				nskip++
				skips[nskip] = ran "\t" what "\t" why
				if (why == "")
					cause("subtest " ran " is skipped without a reason")
			}
			next
		}
		END {
			if (plan < 0)
				cause("no TAP plan (1..N before the first result)")
			else if (late != "")
				cause(late)
			if (plan >= 0 && ran != plan)
				cause("planned " plan " subtests, ran " ran)
			if (nfail)
				cause(nfail " of " ran " subtests failed (first: " firstfail ")")
			if (rc != 0)
				cause("exit status " rc)
			if (plan == 0 && planskip == "" && !nc)
				cause("1..0 without a SKIP reason")
			if (nc)
				print "verdict fail"
			else if (plan == 0) {
				print "verdict skip"
				print "cause " planskip
			} else
				print "verdict pass"
			for (i = 1; i <= nc; i++)
				print "cause " causes[i]
			print "plan " plan
			print "ran " ran
			print "skipped " nskip + 0
			for (i = 1; i <= nskip; i++)
				print "skip " skips[i]
			for (c in expect)
				print "expect " c
		}
	'
}
