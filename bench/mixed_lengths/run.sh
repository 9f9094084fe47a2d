#!/bin/sh
# Runs the mixed-length makespan benchmark for crew and Python in one go.
# Usage: bench/mixed_lengths/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-3}
here=$(dirname "$0")
"$build/bench/mixed_lengths/crew_mixed_lengths" "$repeats"
/usr/bin/python3 "$here/python_mixed_lengths.py" "$repeats"
