#!/bin/sh
# Runs the Pipe round-trip benchmark for crew and Python in one go.
# Usage: bench/pipe/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/pipe/crew_pipe" "$repeats"
/usr/bin/python3 "$here/python_pipe.py" "$repeats"
