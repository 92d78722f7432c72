#!/bin/sh
# selftest_late: the kernel WARNs 300 ms after the test ended (a delayed
# work item): must FAIL ("kernel report (warn) after its END"), the report
# put on the test that ran last. Last of its boot, whose end waits for late
# reports. A harness self-test (harness_splat.ko).
echo "1..1"
modprobe harness_splat &&
	echo warn-later 300 >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - a WARN is on its way"
