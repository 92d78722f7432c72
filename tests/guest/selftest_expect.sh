#!/bin/sh
# selftest_expect: a test that declares the report it provokes ("#
# expect-splat: hung-task") and provokes it: passes. A harness self-test
# (harness_splat.ko), the control for selftest_expect_missing/_other.
echo "1..2"
echo "# expect-splat: hung-task"
t=$(cat /proc/sys/kernel/hung_task_timeout_secs)
echo 1 >/proc/sys/kernel/hung_task_timeout_secs
modprobe harness_splat && echo "ok 1 - modprobe harness_splat"
# D state for 4 s: the hung-task detector reports it after 1 s
echo hang 4 >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 2 - blocked uninterruptibly for 4 s"
echo "$t" >/proc/sys/kernel/hung_task_timeout_secs
