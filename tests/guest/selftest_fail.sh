#!/bin/sh
# selftest_fail: a test that fails, to show that the harness reports it.
# Manual (tests.list); run with: make check TESTS=selftest_fail
echo "ok 1 - this subtest passes"
echo "not ok 2 - this subtest fails on purpose"
echo "1..2"
exit 1
