#!/bin/sh
# selftest_lateplan: the plan after the results (counted from what ran):
# must FAIL ("comes after 2 results"). A harness self-test.
echo "ok 1 - one"
echo "ok 2 - two"
echo "1..2"
