# SPDX-License-Identifier: GPL-2.0-only
#
# vfio-core: an out-of-tree vfio.ko for Debian 12's Linux 6.1 kernels.
#
#   make                    build vfio.ko for KDIR (default: running kernel)
#   make ARCH=s390 CROSS_COMPILE=s390x-linux-gnu- KDIR=...   cross-build
#   make abi-check          compare exports and CRCs with KDIR's Module.symvers
#   make dkms-build         what DKMS runs (dkms.conf MAKE[0]): the drift
#                           guard, the build, the ABI guard
#                           (scripts/vfio-core-guard); fails if either declines
#   make deb                build/deb/vfio-core-dkms_VERSION_all.deb (dh-dkms),
#                           checked with lintian
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
GUARD := $(CURDIR)/scripts/vfio-core-guard

SOURCES := $(wildcard src/*.c include/*.h)
VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' dkms.conf)

all: module

module:
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) clean

abi-check: module
	$(GUARD) abi $(CURDIR)/Module.symvers $(REF_SYMVERS)

# One recipe, so that make -j (DKMS passes one) keeps the order: no compiler
# for a kernel whose vfio core drifted, no vfio.ko left behind that is not
# a binary drop-in.
dkms-build:
	$(GUARD) drift $(KDIR)
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules
	$(GUARD) abi $(CURDIR)/Module.symvers $(REF_SYMVERS) || { rm -f vfio.ko; exit 1; }

# The package is built from a copy of the tree in build/deb, with
# dpkg-buildpackage (binary only, unsigned), then checked with lintian.
DEB := build/deb/vfio-core-dkms_$(VERSION)_all.deb
deb:
	rm -rf build/deb
	mkdir -p build/deb/vfio-core-$(VERSION)
	cp -a debian dkms.conf verified-core Kbuild Makefile README.md src include scripts \
		build/deb/vfio-core-$(VERSION)/
	cd build/deb/vfio-core-$(VERSION) && dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning --info $(DEB)
	@echo "deb: $(DEB)"

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

.PHONY: all module clean abi-check dkms-build deb style check bench install uninstall
