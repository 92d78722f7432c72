#!/bin/sh
# selftest_linger: the test passes, then the guest freezes (suspend to idle,
# nothing wakes it) while it settles after its last test: QEMU never exits
# on its own, the host kills it and the boot must FAIL ("did not exit on its
# own"). A harness self-test, alone in its boot.
echo "1..1"
(sleep 0.3; echo freeze >/sys/power/state) </dev/null >/dev/null 2>&1 &
echo "ok 1 - the guest freezes in 0.3 s"
