#!/bin/sh
# selftest_skips: two skipped subtests: the test passes and the harness
# counts both skips ("2 subtests skipped"), with their reasons. A harness
# self-test.
echo "1..3"
echo "ok 1 - runs"
echo "ok 2 - does not run here # SKIP the harness self-test says so"
echo "ok 3 - nor this # skip lower case counts too"
