#!/bin/bash
# abi-check.sh BUILT_SYMVERS REF_SYMVERS
#
# vfio.ko is a binary drop-in only if it exports exactly the symbols the
# kernel's own vfio.ko exports, each with the same CRC and export type.
# The comparison is the ABI guard every DKMS build runs
# (scripts/vfio-core-guard abi); it prints every difference and exits
# non-zero on any.
set -euo pipefail
exec "$(cd "$(dirname "$0")/.." && pwd)/scripts/vfio-core-guard" abi "$@"
