#!/bin/sh
# selftest_hang: a test that never ends: the guest kills it at its timeout
# and it must FAIL ("timeout"), with the console tail. A harness self-test.
echo "1..1"
echo "ok 1 - about to sleep forever"
while :; do
	sleep 1000
done
