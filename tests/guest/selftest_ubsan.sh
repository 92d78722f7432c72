#!/bin/sh
# selftest_ubsan: the kernel shifts by more than the width of the type; on a
# kernel with that checker the test must FAIL ("kernel report (ubsan)").
# Without the checker harness_splat refuses and the test fails for another
# reason, so the self-test fails: the lane's kernel lacks what it relies on.
# A harness self-test for the debug lane.
echo "1..1"
modprobe harness_splat &&
	echo ubsan >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - a ubsan report provoked"
