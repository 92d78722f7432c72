# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-core: an out-of-tree vfio.ko for Debian 12's Linux 6.1 kernels.
#
#   make                    build vfio.ko for KDIR (default: running kernel)
#   make ARCH=s390 CROSS_COMPILE=s390x-linux-gnu- KDIR=...   cross-build
#   make abi-check          compare exports and CRCs with KDIR's Module.symvers
#   make style              checkpatch --strict on src/ and include/
#   make check              the whole test suite (host checks + QEMU guests)
#   make bench              ours against stock in booted kernels (tests/bench)
#   sudo make install       build and install with DKMS, swap the running vfio
#   sudo make uninstall     undo make install, back to the stock vfio
#   make clean

KERNELRELEASE ?= $(shell uname -r)
KDIR ?= /lib/modules/$(KERNELRELEASE)/build
# Module.symvers holding the reference exports of module vfio: the kernel's
# own, except for a kernel that does not build vfio (the s390x test system:
# make $$(cat ~/.cache/vfio-core/s390x-stack/ABI/make-args) abi-check).
REF_SYMVERS ?= $(KDIR)/Module.symvers

SOURCES := $(wildcard src/*.c include/*.h)

all: module

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

abi-check: module
	tests/abi-check.sh $(CURDIR)/Module.symvers $(REF_SYMVERS)

style:
	tests/style.sh $(SOURCES)

check:
	tests/check.sh

bench:
	tests/bench/bench.sh

install:
	scripts/vfio-core-install install

uninstall:
	scripts/vfio-core-install uninstall

.PHONY: all module clean abi-check style check bench install uninstall
