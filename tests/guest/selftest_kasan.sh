#!/bin/sh
# selftest_kasan: the kernel reads 64 bytes it freed; on a
# kernel with that checker the test must FAIL ("kernel report (kasan)").
# Without the checker harness_splat refuses and the test fails for another
# reason, so the self-test fails: the lane's kernel lacks what it relies on.
# A harness self-test for the debug lane.
echo "1..1"
modprobe harness_splat &&
	echo kasan >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - a kasan report provoked"
