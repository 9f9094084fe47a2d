#!/bin/sh
# Runs the CPU-bound benchmark for crew, two bare forked processes and Python in one go.
# Usage: bench/cpu_bound/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-3}
here=$(dirname "$0")
"$build/bench/cpu_bound/crew_cpu_bound" "$repeats"
/usr/bin/python3 "$here/python_cpu_bound.py" "$repeats"
