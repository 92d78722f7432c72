#!/bin/sh
# fuzz_debug: the fuzz test in the debug lane, with fewer calls: under
# KASAN, lockdep and kmemleak in TCG a call costs far more than on Debian's
# kernel (1,000,000 calls had not finished after 690 s there, against 19 s
# on the stock lane's kernel), and the point here is the checkers' view of
# the error paths, which a few thousand calls reach. FUZZ_CALLS overrides.
FUZZ_CALLS=${FUZZ_CALLS:-20000}
export FUZZ_CALLS
exec "$(dirname "$0")/fuzz"
