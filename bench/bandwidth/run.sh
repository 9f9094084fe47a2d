#!/bin/sh
# Runs the 64 MiB round-trip benchmark for crew, the bare baseline and Python in one go.
# Usage: bench/bandwidth/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/bandwidth/crew_bandwidth" "$repeats"
/usr/bin/python3 "$here/python_bandwidth.py" "$repeats"
