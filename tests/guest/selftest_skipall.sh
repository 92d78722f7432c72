#!/bin/sh
# selftest_skipall: "1..0 # SKIP why": a skipped test, not a passed one. A
# harness self-test.
echo "1..0 # SKIP nothing to test here, on purpose"
