#!/bin/sh
# stack_load: the vfio stack loads on the vfio.ko under test and unloads
# cleanly. Guest test (busybox sh + kmod), TAP on stdout.
# VFIO_MODE=stock expects the kernel's own vfio (version 0.3), ours expects
# the replacement (any other version).

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
check() {
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		echo "$out" | sed 's/^/# /'
		return 1
	fi
}

case "${ARCH:-amd64}" in
s390x) kvm_mods="kvm" ;;
*) kvm_mods="kvm kvm_amd" ;;
esac
mods="vfio vfio_iommu_type1 vfio_pci_core vfio_pci mdev $kvm_mods"

case "${ARCH:-amd64}" in
s390x) unload="kvm" ;;
*) unload="kvm_amd kvm ccp" ;;
esac
unload="$unload mdev vfio_pci vfio_pci_core vfio_virqfd vfio_iommu_type1 vfio irqbypass"

# The plan: a modprobe and an "is loaded" per module, the version (ours:
# and where modprobe finds it), dmesg and taint, an "is unloaded" per
# module of the unload list, nothing left, dmesg after.
words() { echo $#; }
# shellcheck disable=SC2086 # word counts
nmods=$(words $mods) nunload=$(words $unload)
nver=1
[ "${VFIO_MODE:-stock}" = ours ] && nver=2
echo "1..$((2 * nmods + nver + 2 + nunload + 2))"

taint0=$(cat /proc/sys/kernel/tainted)
dmesg -c >/dev/null

# kvm needs hardware virtualization: SVM (TCG's -cpu max has it) on amd64,
# SIE on s390x (TCG does not emulate it).
no_virt=
if [ "${ARCH:-amd64}" = s390x ] && ! grep -qw sie /proc/cpuinfo; then
	no_virt="no SIE in this CPU"
fi
skipped=
for m in $mods; do
	case "$m" in
	kvm*)
		if [ -n "$no_virt" ] && ! modprobe "$m" 2>/dev/null; then
			ok "modprobe $m # SKIP $no_virt"
			skipped="$skipped $m"
			continue
		fi
		;;
	esac
	check "modprobe $m" modprobe "$m"
done

if [ -r /sys/module/vfio/version ]; then
	ver=$(cat /sys/module/vfio/version)
else
	ver=none
fi
if [ "${VFIO_MODE:-stock}" = ours ]; then
	if [ "$ver" != 0.3 ] && [ "$ver" != none ]; then
		ok "vfio is ours (version $ver)"
	else
		not_ok "vfio is ours (version $ver; the stock one is 0.3)"
	fi
	if modinfo -F filename vfio | grep -q /updates/; then
		ok "modprobe resolves vfio to updates/"
	else
		not_ok "modprobe resolves vfio to updates/ ($(modinfo -F filename vfio))"
	fi
else
	if [ "$ver" = 0.3 ]; then
		ok "vfio is stock (version $ver)"
	else
		not_ok "vfio is stock (version $ver, expected 0.3)"
	fi
fi

for m in $mods; do
	case "$skipped " in
	*" $m "*)
		ok "$m is loaded # SKIP $no_virt"
		continue
		;;
	esac
	if [ -d "/sys/module/$m" ]; then
		ok "$m is loaded"
	else
		not_ok "$m is loaded"
	fi
done

log=$(dmesg)
bad=$(echo "$log" | grep -E 'disagrees about version|Unknown symbol|invalid module format|BUG:|WARNING:|Oops|\[#[0-9]+\]|end trace' || true)
if [ -z "$bad" ]; then
	ok "no symbol or version errors or oopses in dmesg"
else
	not_ok "no symbol or version errors or oopses in dmesg"
	echo "$bad" | sed 's/^/# /'
fi

# Taint: only O (out of tree, 4096) and E (unsigned, 8192) are allowed.
taint=$(cat /proc/sys/kernel/tainted)
other=$(( (taint & ~taint0) & ~(4096 | 8192) ))
if [ "$other" -eq 0 ]; then
	ok "no taint but O/E (tainted=$taint, before=$taint0)"
else
	not_ok "no taint but O/E (tainted=$taint, before=$taint0, unexpected bits $other)"
	echo "$log" | grep -i taint | sed 's/^/# /'
fi

# Unload the whole stack, users before what they use; vfio must go too.
# (modprobe -r also removes the modules a module used that nothing else
# uses: some are gone before their turn.)
for m in $unload; do
	err=
	if [ -d "/sys/module/$m" ]; then
		err=$(modprobe -r "$m" 2>&1) || true
	fi
	if [ -d "/sys/module/$m" ]; then
		not_ok "$m is unloaded ($(cat "/sys/module/$m/refcnt" 2>/dev/null) refs)"
		[ -z "$err" ] || echo "$err" | sed 's/^/# /'
	else
		ok "$m is unloaded"
	fi
done
if grep -q '^vfio' /proc/modules; then
	not_ok "no vfio module is left"
	lsmod | sed 's/^/# /'
else
	ok "no vfio module is left"
fi

bad=$(dmesg | grep -E 'BUG:|WARNING:|Oops|\[#[0-9]+\]|end trace|still in use|refcount' || true)
if [ -z "$bad" ]; then
	ok "clean dmesg after unload"
else
	not_ok "clean dmesg after unload"
	echo "$bad" | sed 's/^/# /'
fi

[ "$fails" -eq 0 ]
