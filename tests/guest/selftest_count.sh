#!/bin/sh
# selftest_count: plans 3 subtests, runs 2, exits 0: must FAIL ("planned 3
# subtests, ran 2"). A harness self-test.
echo "1..3"
echo "ok 1 - one"
echo "ok 2 - two"
