#!/bin/bash
# bench.sh - `make bench`: vfio-core against the stock vfio.ko, measured in
# booted kernels (issue 14). Ops 1-5 run on the same kernel with the stock
# vfio.ko and with ours, op 6 (swap downtime) in boots that swap, op 7 (DKMS
# build time, module size) on the host. Boots go through the test harness
# (tests/vm/run.sh, initramfs.sh): the guest half is tests/bench/bench.c,
# which prints every sample; the statistics are done here (stats.py, Python
# standard library only), results.json is assembled with jq, the plot drawn
# with gnuplot.
#
# Output (OUT, default build/bench): a table on the terminal and in
# table.txt, results.json (every sample, the statistics, the kernel, QEMU,
# host CPU and load), bench.png, the boots' logs in logs/.
#
# Knobs (environment):
#   BENCH_METHOD=boots|swap  boots (default): alternating boots of the stock
#                       and our vfio.ko, BENCH_BOOTS of each, in the order
#                       stock ours ours stock stock ours ...; swap: one boot
#                       per arch that starts on stock and switches with
#                       vfio-swap, BENCH_ROUNDS rounds of each in that order
#   BENCH_BOOTS=3       boots of each vfio.ko (METHOD=boots)
#   BENCH_ROUNDS=3      rounds of each in the one boot (METHOD=swap)
#   BENCH_ITERS=2000 BENCH_WARMUP=200   timed / untimed iterations per op
#   BENCH_VM_ITERS=200  VM create/destroy iterations
#   BENCH_PCI_ITERS=500 vfio-pci first open/last close iterations (ms each)
#   BENCH_RELEASE=1:100,10:50,100:20    op 5: sleep ms : iterations
#   BENCH_SWAP_SETS=1,4,8 BENCH_SWAP_ITERS=5 BENCH_SWAP_BOOTS=1
#                       op 6: device counts, swaps each way per count, boots
#                       (METHOD=boots; METHOD=swap does op 6 in its boot)
#   BENCH_DKMS_REPS=3   op 7: timed dkms builds per kernel (after one untimed;
#                       s390x: one timed cross build, DKMS does not cross-build)
#   BENCH_RETRIES=2     tries again a boot that failed (only complete boots count)
#   BENCH_ARCHES="amd64 s390x"  s390x: the s390x test system (S390X=1 builds
#                       it, as make check does; S390X=auto only uses one
#                       already built; no KVM there, so ops 1(VM), 4, 5 skip)
#   BENCH_SMOKE=1       one iteration of everything, METHOD=swap, amd64 only:
#                       the `make check` smoke, a minute or two
#   BENCH_WRAP="CMD"    run each boot and build as CMD BOOT... (e.g. a CPU
#                       slot allocator on a shared machine)
#   KABI OURS_KO KMODS  the amd64 ABI (default current), a prebuilt vfio.ko
#                       and test-driver directory (default: built here)
#   OUT=DIR             output directory (default build/bench)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/harness.sh
. "$here/../vm/harness.sh"
cd "$repo_dir"

if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	: "${BENCH_METHOD:=swap}" "${BENCH_ROUNDS:=1}" "${BENCH_ITERS:=3}" "${BENCH_WARMUP:=1}"
	: "${BENCH_VM_ITERS:=2}" "${BENCH_PCI_ITERS:=2}" "${BENCH_RELEASE:=1:1,10:1}" "${BENCH_SWAP_SETS:=4}"
	: "${BENCH_SWAP_ITERS:=1}" "${BENCH_DKMS_REPS:=1}" "${BENCH_ARCHES:=amd64}"
fi
method=${BENCH_METHOD:-boots}
boots=${BENCH_BOOTS:-3}
rounds=${BENCH_ROUNDS:-3}
iters=${BENCH_ITERS:-2000}
warmup=${BENCH_WARMUP:-200}
vm_iters=${BENCH_VM_ITERS:-200}
pci_iters=${BENCH_PCI_ITERS:-500}
release=${BENCH_RELEASE:-1:100,10:50,100:20}
swap_sets=${BENCH_SWAP_SETS:-1,4,8}
swap_iters=${BENCH_SWAP_ITERS:-5}
swap_boots=${BENCH_SWAP_BOOTS:-1}
dkms_reps=${BENCH_DKMS_REPS:-3}
retries=${BENCH_RETRIES:-2}
arches=${BENCH_ARCHES:-amd64 s390x}
out=${OUT:-$repo_dir/build/bench}
read -r -a wrap <<<"${BENCH_WRAP:-}"
case "$method" in boots | swap) ;; *) die "BENCH_METHOD must be boots or swap" ;; esac
for v in "$boots" "$rounds" "$iters" "$warmup" "$vm_iters" "$pci_iters" "$swap_iters" "$swap_boots" "$dkms_reps" "$retries"; do
	[[ $v =~ ^[0-9]+$ ]] || die "bad number '$v' in a BENCH_* knob"
done
# ARCH means something else to kbuild (make bench ARCH=... would pass it on).
unset ARCH MAKEFLAGS MAKEOVERRIDES MFLAGS

"$harness_dir/../deps.sh"
rm -rf "$out"
mkdir -p "$out/logs"
t_start=$(now_ms)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
failures=()

# The guest programs of one arch: bench, swap_open (op 6) and bench.conf.
guest_programs() {
	local a=$1 dir=$out/guest/$1 cc
	cc=$(gcc_for "$a")
	mkdir -p "$dir"
	"$cc" -Wall -Wextra -Werror -O2 -static -o "$dir/bench" "$here/bench.c" -lpthread
	"$cc" -Wall -Wextra -Werror -O2 -static -o "$dir/swap_open" "$repo_dir/tests/guest/swap_open.c"
	echo "$dir"
}

# conf DIR ROUNDS SETS: the guest's settings (/tests/bench.conf).
conf() {
	printf '%s\n' "BENCH_ITERS=$iters" "BENCH_WARMUP=$warmup" "BENCH_VM_ITERS=$vm_iters" \
		"BENCH_PCI_ITERS=$pci_iters" \
		"BENCH_RELEASE=$release" "BENCH_ROUNDS=$2" "BENCH_SWAP_SETS=$3" \
		"BENCH_SWAP_ITERS=$swap_iters" >"$1/bench.conf"
}

# A generous guest-side limit for one boot (s): TCG under load is slow.
boot_limit() {
	local ops_runs=$1 sets=$2 r
	r=$(awk -v s="$release" 'BEGIN { n = split(s, a, ","); for (i = 1; i <= n; i++) {
		split(a[i], b, ":"); t += (b[2] + 1) * b[1] * 3 / 1000 } print int(t) }')
	echo $((120 + ops_runs * (60 + iters * 60 / 1000 + vm_iters / 5 + pci_iters / 20 + r) +
		sets * swap_iters * 90))
}

# boot ARCH MODE NAME TESTDIR KO KMODS ROUNDS SETS DEVICES...: one boot of
# the bench; its samples land in $out/logs/NAME/tap.log. A boot that fails
# (a TCG guest can stall: RCU stalls, a lost timer) is tried again, up to
# BENCH_RETRIES times; a failed attempt's logs stay as NAME.failN, and only
# complete boots count. Every attempt is a row of boots.tsv.
boot() {
	local a=$1 m=$2 name=$3 dir=$4 ko=$5 kmods=$6 r=$7 sets=$8 nsets runs limit rc try load
	shift 8
	local dev_args=() ko_args=() d
	for d in "$@"; do dev_args+=(--device "$d"); done
	[ "$m" = stock ] || ko_args=(--ko "$ko")
	conf "$dir" "$r" "$sets"
	nsets=$(tr ',' '\n' <<<"$sets" | grep -c . || true)
	runs=1
	[ "$m" = swap ] && runs=$((2 * r))
	limit=$(boot_limit "$runs" "$nsets")
	for ((try = 0; try <= retries; try++)); do
		load=$(cut -d' ' -f1 /proc/loadavg)
		echo "bench: boot $name ($a/$m, limit ${limit}s, host load $load)"
		rc=0
		HARNESS_NESTED=1 "${wrap[@]}" "$harness_dir/run.sh" --abi "$abi_of_arch" \
			"${ko_args[@]}" --kmods "$kmods" --tests "$dir" --logdir "$out/logs/$name" \
			"${dev_args[@]}" "$a" "$m" "bench:$limit" >"$out/logs/$name.out" 2>&1 || rc=$?
		if [ "$rc" = 0 ]; then
			printf '%s\t%s\t%s\t%s\t%s\n' "$a" "$m" "$name" 0 "$load" >>"$out/boots.tsv"
			return 0
		fi
		echo "bench: boot $name FAILED (exit $rc), logs kept in $out/logs/$name.fail$((try + 1)):"
		grep -E '^(FAIL|boot:)' "$out/logs/$name.out" | sed 's/^/  | /' || true
		mv "$out/logs/$name" "$out/logs/$name.fail$((try + 1))"
		mv "$out/logs/$name.out" "$out/logs/$name.fail$((try + 1)).out"
		printf '%s\t%s\t%s\t%s\t%s\n' "$a" "$m" "$name.fail$((try + 1))" "$rc" "$load" >>"$out/boots.tsv"
	done
	failures+=("boot $name ($a/$m) failed $try time(s), see $out/logs/$name.fail*")
}

# boots_for ARCH KO KMODS DEVICES...: every boot of one arch.
boots_for() {
	local a=$1 ko=$2 kmods=$3 dir i m order
	shift 3
	dir=$(guest_programs "$a")
	if [ "$method" = swap ]; then
		boot "$a" swap "$a-swap-1" "$dir" "$ko" "$kmods" "$rounds" "$swap_sets" "$@"
		return
	fi
	for ((i = 1; i <= boots; i++)); do
		# stock ours, ours stock, ...: a linear drift cancels out
		if ((i % 2)); then order="stock ours"; else order="ours stock"; fi
		for m in $order; do
			boot "$a" "$m" "$a-$m-$i" "$dir" "$ko" "$kmods" 1 "" "$@"
		done
	done
	for ((i = 1; i <= swap_boots; i++)); do
		boot "$a" swap "$a-swap-$i" "$dir" "$ko" "$kmods" 0 "$swap_sets" "$@"
	done
}

# build_module DIR KDIR [MAKE ARGS...]: the module sources of this tree (or
# tests/kmod with KMOD=1) copied to DIR and built against KDIR, as DKMS and
# tests/check.sh do (the tree stays clean).
build_module() {
	local b=$1 kdir=$2
	shift 2
	mkdir -p "$b"
	if [ "${KMOD:-0}" = 1 ]; then
		cp -a tests/kmod/Kbuild tests/kmod/*.c "$b/"
	else
		cp -a Kbuild src include "$b/"
	fi
	"${wrap[@]}" make -C "$kdir" "M=$b" "$@" -j"$(nproc)" modules >"$b.log" 2>&1 ||
		{ tail -n 20 "$b.log" >&2; die "build in $b failed (log $b.log)"; }
}

: >"$out/boots.tsv"
: >"$out/dkms.tsv"
abi=${KABI:-$(current_abi amd64)}
for a in $arches; do
	case "$a" in
	amd64)
		"$harness_dir/fetch.sh" amd64 "$abi" >"$out/logs/fetch-amd64.log" 2>&1 ||
			die "cannot fetch the amd64 $abi kernel (log $out/logs/fetch-amd64.log)"
		kdir=$(abi_dir amd64 "$abi")/root/lib/modules/$(kver amd64 "$abi")/build
		ko=${OURS_KO:-}
		if [ -z "$ko" ]; then
			build_module "$out/build/amd64/$abi" "$kdir"
			ko=$out/build/amd64/$abi/vfio.ko
		fi
		kmods=${KMODS:-}
		if [ -z "$kmods" ]; then
			KMOD=1 build_module "$out/build/kmod-amd64/$abi" "$kdir"
			kmods=$out/build/kmod-amd64/$abi
		fi
		abi_of_arch=$abi
		echo "amd64 ko=$ko" >>"$out/modules.txt"
		# op 6 with 8 devices: 4 PCI functions (edu, e1000e, 2 more edu) + 4 mdevs
		boots_for amd64 "$ko" "$kmods" edu edu
		;;
	s390x)
		if [ "${S390X:-1}" = 1 ]; then
			stack=$("${wrap[@]}" "$harness_dir/s390x-stack.sh" ${S390X_ABI:+"$S390X_ABI"} 2>"$out/logs/s390x-stack.log") ||
				die "the s390x test system did not build (log $out/logs/s390x-stack.log)"
		else
			stack=$(printf '%s\n' "$VFIO_CORE_CACHE"/s390x-stack/*/.done 2>/dev/null |
				sort -V | tail -n 1)
			stack=${stack%/.done}
		fi
		if [ -z "$stack" ] || [ ! -f "$stack/env" ]; then
			echo "bench: no s390x test system (S390X=1 builds it); s390x skipped"
			printf 's390x\t-\tnone\tskipped: no s390x test system\t-\n' >>"$out/boots.tsv"
			continue
		fi
		# shellcheck source=/dev/null disable=SC2153 # its variables
		mapfile -t v < <(set +u; . "$stack/env"
			printf '%s\n' "$KDIR" "$CROSS_COMPILE" "$KCPPFLAGS" "$REF_SYMVERS" \
				"${GUEST_ROOT:-}" "${GUEST_KERNEL:-}")
		a390=${stack##*/}
		s390_make=(ARCH=s390 "CROSS_COMPILE=${v[1]}" "KCPPFLAGS=${v[2]}")
		# op 7 on s390x: DKMS does not cross-build; the make it would run, timed
		t0=$(now_ms)
		build_module "$out/build/s390x/$a390" "${v[0]}" "${s390_make[@]}"
		ms=$(($(now_ms) - t0))
		kv390=$(basename "$(dirname "${v[0]}")")
		printf 's390x\t%s\tkbuild_cross\t%d.%03d\ts\n' "$kv390" $((ms / 1000)) $((ms % 1000)) >>"$out/dkms.tsv"
		# stripped of debug info as DKMS does (strip -g), like the stock one
		"${v[1]}strip" -g -o "$out/build/s390x/vfio-stripped.ko" "$out/build/s390x/$a390/vfio.ko"
		"$here/ko-size.sh" s390x "$kv390" "$out/build/s390x/vfio-stripped.ko" "$stack/stock/vfio.ko" \
			"$out/dkms.tsv" "${v[1]}size"
		KMOD=1 build_module "$out/build/kmod-s390x/$a390" "${v[0]}" "${s390_make[@]}" \
			"KBUILD_EXTRA_SYMBOLS=${v[3]} ${v[3]%/stock/Module.symvers}/deps/Module.symvers"
		abi_of_arch=$a390
		echo "s390x ko=$out/build/s390x/$a390/vfio.ko" >>"$out/modules.txt"
		# op 6 with 8 devices: 4 zPCI functions + 4 mdevs
		GUEST_ROOT=${v[4]} GUEST_KERNEL=${v[5]} boots_for s390x \
			"$out/build/s390x/$a390/vfio.ko" "$out/build/kmod-s390x/$a390" \
			zpci,uid=2,fid=2,target=pci2 virtio-rng-pci,id=pci2 \
			zpci,uid=3,fid=3,target=pci3 virtio-rng-pci,id=pci3 \
			zpci,uid=4,fid=4,target=pci4 virtio-rng-pci,id=pci4
		;;
	*) die "unknown arch '$a' in BENCH_ARCHES" ;;
	esac
done

# ------------------------------------------------ op 7: DKMS build, size
"$here/dkms-time.sh" "$abi" "$dkms_reps" "$out/dkms.tsv" "${wrap[@]}" >"$out/logs/dkms.log" 2>&1 ||
	failures+=("op 7: DKMS build timing failed, see $out/logs/dkms.log")

# ------------------------------------------------ samples, statistics
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
# "# S MODE ROUND OP NS..." and "# W DIR K ITER k=v..." of every boot.
: >"$out/samples.tsv"
: >"$out/swaps.tsv"
while IFS=$'\t' read -r a m name rc _; do
	tap=$out/logs/$name/tap.log
	if [ "$rc" != 0 ] || [ ! -f "$tap" ]; then continue; fi
	awk -v a="$a" -v b="$name" -v OFS='\t' '
		$1 == "#" && $2 == "S" { for (i = 6; i <= NF; i++) print a, $3, b, $4, $5, $i }
	' "$tap" >>"$out/samples.tsv"
	awk -v a="$a" -v b="$name" -v OFS='\t' '
		$1 == "#" && $2 == "W" {
			line = a OFS b OFS $3 OFS $4 OFS $5
			for (i = 6; i <= NF; i++) { split($i, kv, "="); line = line OFS kv[2] }
			print line
		}
	' "$tap" >>"$out/swaps.tsv"
done <"$out/boots.tsv"

/usr/bin/python3 "$here/stats.py" "$out" >"$out/table.txt"

# results.json: every sample and the statistics, assembled with jq.
qemu_v=$(qemu-system-x86_64 --version | head -n 1)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
commit=$(git -C "$repo_dir" rev-parse HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$repo_dir" status --porcelain -- src include Kbuild 2>/dev/null | wc -l)
jq -n \
	--arg commit "$commit" --argjson dirty "$dirty" --arg date "$(date -u +%FT%TZ)" \
	--arg kernel "$(kver amd64 "$abi")" --arg qemu "$qemu_v" --arg cpu "$cpu" \
	--argjson ncpu "$(nproc)" --arg load_start "$load_start" --arg load_end "$load_end" \
	--arg method "$method" --argjson boots "$boots" --argjson rounds "$rounds" \
	--argjson iters "$iters" --argjson warmup "$warmup" --argjson vm_iters "$vm_iters" --argjson pci_iters "$pci_iters" \
	--arg release "$release" --arg swap_sets "$swap_sets" --argjson swap_iters "$swap_iters" \
	--arg wrap "${BENCH_WRAP:-}" --arg modules "$(cat "$out/modules.txt" 2>/dev/null)" \
	--argjson took_s "$((($(now_ms) - t_start) / 1000))" \
	--slurpfile stats "$out/stats.json" \
	--rawfile samples "$out/samples.tsv" --rawfile swaps "$out/swaps.tsv" \
	--rawfile dkms "$out/dkms.tsv" --rawfile boot_rows "$out/boots.tsv" '
	def rows($t): $t | split("\n") | map(select(length > 0) | split("\t"));
	{
		commit: $commit, tree_dirty_files: $dirty, date: $date,
		kernel: $kernel, qemu: $qemu, host_cpu: $cpu, host_cpus: $ncpu,
		host_load: { start: $load_start, end: $load_end }, boot_wrapper: $wrap,
		modules: ($modules | split("\n")), took_s: $took_s,
		config: { method: $method, boots: $boots, rounds: $rounds, iters: $iters,
			warmup: $warmup, vm_iters: $vm_iters, pci_iters: $pci_iters, release: $release,
			swap_sets: $swap_sets, swap_iters: $swap_iters },
		boots: (rows($boot_rows) | map({ arch: .[0], mode: .[1], name: .[2], status: (.[3] | tonumber? // .[3]),
			host_load_at_start: .[4] })),
		stats: $stats[0],
		samples_ns: (rows($samples)
			| group_by(.[0], .[1], .[2], .[3], .[4])
			| map({ arch: .[0][0], mode: .[0][1], boot: .[0][2], round: (.[0][3] | tonumber),
				op: .[0][4], ns: map(.[5] | tonumber) })),
		swaps_ns: (rows($swaps) | map({ arch: .[0], boot: .[1], to: .[2],
			devices: (.[3] | tonumber), iter: (.[4] | tonumber),
			total: (.[5] | tonumber), check: (.[6] | tonumber), save: (.[7] | tonumber),
			unload: (.[8] | tonumber), load: (.[9] | tonumber), deps: (.[10] | tonumber),
			restore: (.[11] | tonumber), reopen: (.[12] | tonumber) })),
		dkms: (rows($dkms) | map({ arch: .[0], kernel: .[1], what: .[2],
			value: (.[3] | tonumber), unit: .[4] }))
	}' >"$out/results.json"

gnuplot -e "dir='$out'; swaps=$(wc -l <"$out/swaps.tsv")" "$here/plot.gp" 2>"$out/logs/gnuplot.log" ||
	failures+=("plot: gnuplot failed, see $out/logs/gnuplot.log")

cat "$out/table.txt"
echo
echo "bench: took $(fmt_ms $(($(now_ms) - t_start))); host load $load_start at the start, $load_end at the end"
echo "bench: $out/results.json, $out/bench.png, $out/table.txt"
if [ ${#failures[@]} -gt 0 ]; then
	printf 'bench: FAILED: %s\n' "${failures[@]}"
	exit 1
fi
