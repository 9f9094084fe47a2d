#!/bin/sh
# Runs the lock benchmark for crew and Python in one go.
# Usage: bench/lock/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/lock/crew_lock" "$repeats"
/usr/bin/python3 "$here/python_lock.py" "$repeats"
