#!/bin/sh
# selftest_nodone: the test passes, then the guest resets (sysrq b) while
# it settles after its last test: QEMU exits 0 (-no-reboot), but the boot
# never reached "### DONE" and must FAIL for that. A harness self-test,
# alone in its boot.
echo "1..1"
(sleep 0.3; echo b >/proc/sysrq-trigger) </dev/null >/dev/null 2>&1 &
echo "ok 1 - the guest resets in 0.3 s"
