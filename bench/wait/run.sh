#!/bin/sh
# Runs the crew::wait round-trip benchmark for crew and Python in one go.
# Usage: bench/wait/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/wait/crew_wait" "$repeats"
/usr/bin/python3 "$here/python_wait.py" "$repeats"
