#!/bin/bash
# s390x-stack.sh [ABI] - build the 6.1 vfio stack for a stock s390x kernel
#
# Debian's s390x 6.1 kernels are built without vfio (CONFIG_VFIO unset). The
# s390x test system is that stock kernel image plus the vfio stack built here,
# out of tree, from linux-source-6.1 of the kernel's own Debian version and
# against its headers, with the configuration a Debian s390x kernel with vfio
# would have:
#   CONFIG_VFIO=m CONFIG_VFIO_IOMMU_TYPE1=m CONFIG_VFIO_VIRQFD=m
#   CONFIG_VFIO_PCI_CORE=m CONFIG_VFIO_PCI=m CONFIG_VFIO_PCI_ZDEV_KVM=y
#   CONFIG_VFIO_MDEV=m CONFIG_VFIO_CCW=m CONFIG_VFIO_AP=m
#   CONFIG_IRQ_BYPASS_MANAGER=m CONFIG_S390_CCW_IOMMU=y CONFIG_S390_AP_IOMMU=y
#   (VFIO_PCI_MMAP and VFIO_PCI_INTX are off on s390, VFIO_NOIOMMU is off.)
# The kernel image already has everything else the stack uses: IOMMU_API and
# S390_IOMMU (zPCI DMA translation, IOMMU groups), EVENTFD, MMU_NOTIFIER, the
# cio and AP bus exports, zpci_kvm_hook, and KVM=m with KVM_VFIO=y. It lacks
# the irqbypass module (IRQ_BYPASS_MANAGER is selected by vfio-pci-core only),
# which is built here too. KVM's zPCI interpretation (arch/s390/kvm/pci.c) is
# not in the stock kvm.ko, so vfio-pci's zPCI KVM hooks stay unregistered.
#
# The dependents are built against the Module.symvers of the source-built
# vfio.ko, so another vfio.ko built against the same headers is a drop-in
# exactly when its exports and CRCs match stock/Module.symvers.
#
# Output, in $VFIO_CORE_CACHE/s390x-stack/ABI/:
#   stock/vfio.ko          vfio core built from Debian's source (the oracle)
#   stock/Module.symvers   its exports: the reference for tests/abi-check.sh
#   deps/*.ko              irqbypass vfio_virqfd vfio_iommu_type1 mdev
#                          vfio-pci-core vfio-pci vfio_ccw vfio_ap
#   deps/Module.symvers    the dependents' own exports
#   config.h               the CONFIG_VFIO* symbols the kernel headers lack
#   make-args              one line of make arguments that build another
#                          vfio.ko (ours) for this system, e.g.
#                            make $(cat .../make-args) abi-check
#                          (KDIR ARCH CROSS_COMPILE KCPPFLAGS REF_SYMVERS)
#   env                    the same as shell assignments (sourceable):
#                          KDIR ARCH CROSS_COMPILE KCPPFLAGS REF_SYMVERS
#                          KVER KERNEL_IMAGE MODULES_DIR STACK_DIR
#   build.log              the compiler output
# ABI defaults to the one linux-image-s390x depends on. Idempotent: .done
# holds the ABI and the Debian version it was built for. Prints the directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/vm/lib.sh
. "$here/lib.sh"

[ $# -le 1 ] || die "usage: s390x-stack.sh [ABI]"
abi=${1:-$(current_abi s390x)}
[[ $abi =~ ^6\.1\.0-[0-9]+$ ]] || die "'$abi' is not a 6.1 ABI (like 6.1.0-50)"
kv=$(kver s390x "$abi")
cross=s390x-linux-gnu-
command -v "${cross}gcc-12" >/dev/null ||
	die "${cross}gcc-12 not found (apt-get install gcc-s390x-linux-gnu)"

out=$VFIO_CORE_CACHE/s390x-stack/$abi
kdir_top=$(abi_dir s390x "$abi")
# Fast path: built before for the kernel fetched now (fetch.sh asks apt).
if [ -f "$out/.done" ] && [ -f "$kdir_top/.image" ] && [ -f "$kdir_top/version" ] &&
	[ "$(cat "$out/.done")" = "$abi $(cat "$kdir_top/version")" ]; then
	echo "$out"
	exit 0
fi
kdir_top=$("$here/fetch.sh" s390x "$abi")
ver=$(cat "$kdir_top/version")
kdir=$kdir_top/root/lib/modules/$kv/build
[ -f "$kdir/Module.symvers" ] || die "no s390x headers at $kdir"
src=$("$here/source.sh" "$ver")

stamp="$abi $ver"
if [ -f "$out/.done" ] && [ "$(cat "$out/.done")" = "$stamp" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
if [ -f "$out/.done" ] && [ "$(cat "$out/.done")" = "$stamp" ]; then
	echo "$out"
	exit 0
fi
rm -rf "$out/build" "$out/stock" "$out/deps" "$out/root" "$out/.done"
build=$out/build
mkdir -p "$build/vfio" "$build/deps" "$out/stock" "$out/deps"

cat >"$out/config.h" <<'EOF'
/* The vfio configuration of the s390x test system (see s390x-stack.sh). */
#define CONFIG_VFIO_MODULE 1
#define CONFIG_VFIO_IOMMU_TYPE1_MODULE 1
#define CONFIG_VFIO_VIRQFD_MODULE 1
#define CONFIG_VFIO_PCI_CORE_MODULE 1
#define CONFIG_VFIO_PCI_MODULE 1
#define CONFIG_VFIO_PCI_ZDEV_KVM 1
#define CONFIG_VFIO_MDEV_MODULE 1
#define CONFIG_VFIO_CCW_MODULE 1
#define CONFIG_VFIO_AP_MODULE 1
#define CONFIG_IRQ_BYPASS_MANAGER_MODULE 1
#define CONFIG_S390_CCW_IOMMU 1
#define CONFIG_S390_AP_IOMMU 1
EOF

kmake=(make -C "$kdir" ARCH=s390 "CROSS_COMPILE=$cross"
	"KCPPFLAGS=-include$out/config.h" "-j$(nproc)")

# Stage 1: the stock vfio core alone; its Module.symvers is the reference.
cp "$src"/drivers/vfio/{Makefile,vfio.h,vfio_main.c,container.c,iova_bitmap.c} \
	"$build/vfio/"

# Stage 2: everything that links against vfio, in one external module tree
# so the dependents resolve each other (mdev for vfio_ccw and vfio_ap,
# vfio_virqfd and irqbypass for vfio-pci-core, vfio-pci-core for vfio-pci).
deps=$build/deps
cp -r "$src/drivers/vfio" "$deps/vfio"
rm -f "$deps"/vfio/{vfio_main.c,container.c,iova_bitmap.c}
cp -r "$src/drivers/s390/cio" "$deps/cio"
cp -r "$src/drivers/s390/crypto" "$deps/crypto"
cp -r "$src/virt/lib" "$deps/irqbypass"
# The cio and crypto Makefiles build the built-in bus code too; a Kbuild file
# takes precedence over them and builds only the vfio drivers.
cat >"$deps/cio/Kbuild" <<'EOF'
CFLAGS_vfio_ccw_trace.o := -I$(src)
vfio_ccw-objs := vfio_ccw_drv.o vfio_ccw_cp.o vfio_ccw_ops.o vfio_ccw_fsm.o \
	vfio_ccw_async.o vfio_ccw_trace.o vfio_ccw_chp.o
obj-m := vfio_ccw.o
EOF
cat >"$deps/crypto/Kbuild" <<'EOF'
vfio_ap-objs := vfio_ap_drv.o vfio_ap_ops.o
obj-m := vfio_ap.o
EOF
cat >"$deps/Kbuild" <<'EOF'
obj-y += irqbypass/ vfio/ cio/ crypto/
EOF

log "building the vfio stack of $kv ($ver) in $build"
t0=$(date +%s)
{
	"${kmake[@]}" "M=$build/vfio" CONFIG_VFIO=m modules
	"${kmake[@]}" "M=$deps" "KBUILD_EXTRA_SYMBOLS=$build/vfio/Module.symvers" \
		CONFIG_IRQ_BYPASS_MANAGER=m CONFIG_VFIO_VIRQFD=m \
		CONFIG_VFIO_IOMMU_TYPE1=m CONFIG_VFIO_MDEV=m \
		CONFIG_VFIO_PCI_CORE=m CONFIG_VFIO_PCI=m CONFIG_VFIO_PCI_ZDEV_KVM=y \
		CONFIG_VFIO_CCW=m CONFIG_VFIO_AP=m modules
} >"$out/build.log" 2>&1 || {
	tail -n 30 "$out/build.log" >&2
	die "build failed, see $out/build.log"
}
# modpost only warns about unresolved symbols; the kernel would refuse them.
if grep -E 'WARNING: modpost: .*undefined' "$out/build.log" >&2; then
	die "the stack needs symbols $kv does not export"
fi
log "built in $(($(date +%s) - t0))s"

# Without debug info, as Debian ships its modules (CRCs are unaffected).
cp "$build/vfio/Module.symvers" "$out/stock/"
"${cross}strip" --strip-debug -o "$out/stock/vfio.ko" "$build/vfio/vfio.ko"
while IFS= read -r -d '' ko; do
	"${cross}strip" --strip-debug -o "$out/deps/${ko##*/}" "$ko"
done < <(find "$deps" -name '*.ko' -print0)
cp "$deps/Module.symvers" "$out/deps/"

# The guest's module tree: the stock modules (hard links) plus the stack at
# the paths a kernel with vfio would install it to.
modroot=$kdir_top/root/lib/modules/$kv
gmod=$out/root/lib/modules/$kv
rm -rf "$out/root"
mkdir -p "$gmod" "$out/root/boot"
cp -al "$modroot/kernel" "$gmod/kernel"
cp "$modroot"/modules.{builtin,builtin.modinfo,order} "$gmod/"
ln -s "$kdir_top/root/boot/vmlinuz-$kv" "$out/root/boot/vmlinuz-$kv"
for m in stock/vfio:drivers/vfio deps/vfio_virqfd:drivers/vfio \
	deps/vfio_iommu_type1:drivers/vfio deps/mdev:drivers/vfio/mdev \
	deps/vfio-pci-core:drivers/vfio/pci deps/vfio-pci:drivers/vfio/pci \
	deps/vfio_ccw:drivers/s390/cio deps/vfio_ap:drivers/s390/crypto \
	deps/irqbypass:virt/lib; do
	[ -f "$out/${m%%:*}.ko" ] || die "${m%%:*}.ko was not built"
	mkdir -p "$gmod/kernel/${m#*:}"
	ln "$out/${m%%:*}.ko" "$gmod/kernel/${m#*:}/"
done
# Every symbol the stack needs must come from the image or its modules.
depmod -b "$out/root" -e -E "$kdir/Module.symvers" "$kv" 2>"$out/depmod.log" ||
	die "depmod failed, see $out/depmod.log"
if [ -s "$out/depmod.log" ]; then
	cat "$out/depmod.log" >&2
	die "the module tree does not resolve"
fi

printf '%s\n' "KDIR=$kdir ARCH=s390 CROSS_COMPILE=$cross KCPPFLAGS=-include$out/config.h REF_SYMVERS=$out/stock/Module.symvers" \
	>"$out/make-args"
{
	printf 'KDIR=%q\n' "$kdir"
	printf 'ARCH=s390\n'
	printf 'CROSS_COMPILE=%q\n' "$cross"
	printf 'KCPPFLAGS=%q\n' "-include$out/config.h"
	printf 'REF_SYMVERS=%q\n' "$out/stock/Module.symvers"
	printf 'KVER=%q\n' "$kv"
	printf 'KERNEL_IMAGE=%q\n' "$kdir_top/root/boot/vmlinuz-$kv"
	printf 'MODULES_DIR=%q\n' "$kdir_top/root/lib/modules/$kv"
	printf 'STACK_DIR=%q\n' "$out"
	printf 'GUEST_ROOT=%q\n' "$out/root"
	printf 'GUEST_KERNEL=%q\n' "$out/root/boot/vmlinuz-$kv"
} >"$out/env"
echo "$stamp" >"$out/.done"
echo "$out"
