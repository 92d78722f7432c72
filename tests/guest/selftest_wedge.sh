#!/bin/sh
# selftest_wedge: a test that wedges the whole guest (a panic that does not
# reboot), to show that the host-side timeout ends the boot and reports a
# hang with the console tail. Manual (tests.list, slow: the boot's whole
# timeout); run with:
#   make check TESTS=selftest_wedge BOOT_TIMEOUT=30
echo "1..1"
echo "ok 1 - about to wedge the guest"
echo 0 >/proc/sys/kernel/panic
echo c >/proc/sysrq-trigger
