#!/bin/sh
# selftest_fail: a subtest fails: the test must FAIL ("1 of 2 subtests
# failed"). A harness self-test (tests.list: selftest).
echo "1..2"
echo "ok 1 - this subtest passes"
echo "not ok 2 - this subtest fails on purpose"
exit 1
