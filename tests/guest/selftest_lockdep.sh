#!/bin/sh
# selftest_lockdep: the kernel takes two mutexes in one order, then in the other; on a
# kernel with that checker the test must FAIL ("kernel report (lockdep)").
# Without the checker harness_splat refuses and the test fails for another
# reason, so the self-test fails: the lane's kernel lacks what it relies on.
# A harness self-test for the debug lane.
echo "1..1"
modprobe harness_splat &&
	echo lockdep >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - a lockdep report provoked"
