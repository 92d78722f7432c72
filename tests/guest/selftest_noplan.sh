#!/bin/sh
# selftest_noplan: results and exit 0, but no plan: must FAIL ("no TAP
# plan"): without one, a test cut short looks complete. A harness self-test.
echo "ok 1 - a result without a plan"
