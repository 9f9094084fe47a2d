#!/bin/sh
# Runs seed 001's sqrt benchmark for crew (with the heavy variant) and Python in one go.
# Usage: bench/sqrt/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/sqrt/crew_sqrt" "$repeats"
/usr/bin/python3 "$here/python_sqrt.py" "$repeats"
