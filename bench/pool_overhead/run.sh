#!/bin/sh
# Runs the pool-overhead benchmark for a bare ping-pong, crew and Python in one go.
# Usage: bench/pool_overhead/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/pool_overhead/bare_ping_pong"
"$build/bench/pool_overhead/crew_pool_overhead" "$repeats"
/usr/bin/python3 "$here/python_pool_overhead.py" "$repeats"
