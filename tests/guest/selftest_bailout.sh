#!/bin/sh
# selftest_bailout: "Bail out!" with every planned result and exit 0: must
# FAIL ("Bail out!"). A harness self-test.
echo "1..1"
echo "ok 1 - one"
echo "Bail out! on purpose"
