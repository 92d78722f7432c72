#!/bin/sh
# selftest_splat: a clean TAP run during which the kernel WARNs: must FAIL
# ("kernel report (warn)"). A harness self-test (harness_splat.ko).
echo "1..1"
modprobe harness_splat &&
	echo warn >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - the kernel was made to WARN"
