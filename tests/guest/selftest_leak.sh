#!/bin/sh
# selftest_leak: the kernel leaks 64 bytes: on a kernel with kmemleak the
# end-of-boot scan finds them and the test must FAIL ("kernel report
# (kmemleak)"). A harness self-test for a debug lane (harness_splat.ko).
echo "1..1"
modprobe harness_splat &&
	echo leak >/sys/kernel/debug/harness_splat/trigger &&
	echo "ok 1 - 64 bytes leaked"
