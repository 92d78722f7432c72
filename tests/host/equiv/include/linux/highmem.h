/* SPDX-License-Identifier: GPL-2.0-only */
/* User-space stand-in for <linux/highmem.h> (tests/host/equiv_test.sh) */
#include "../../kstub.h"
