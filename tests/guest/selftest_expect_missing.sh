#!/bin/sh
# selftest_expect_missing: declares "# expect-splat: hung-task" and
# provokes nothing: must FAIL ("expected a hung-task report"). A harness
# self-test.
echo "1..1"
echo "# expect-splat: hung-task"
echo "ok 1 - nothing happens"
