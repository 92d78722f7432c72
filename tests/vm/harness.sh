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
