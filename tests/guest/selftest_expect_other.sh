#!/bin/sh
# selftest_expect_other: declares a hung-task report and provokes a WARN
# instead: must FAIL ("kernel report (warn)"): an expected class excuses
# that class only. A harness self-test (harness_splat.ko).
echo "1..1"
echo "# expect-splat: hung-task"
modprobe harness_splat &&
	echo warn >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - the kernel was made to WARN"
