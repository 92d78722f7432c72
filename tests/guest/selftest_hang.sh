#!/bin/sh
# selftest_hang: a test that never ends, to show that the harness kills it at
# its timeout and reports it with the console tail.
# Manual (tests.list); run with: make check TESTS=selftest_hang
echo "ok 1 - about to sleep forever"
while :; do
	sleep 1000
done
