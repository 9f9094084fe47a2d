#!/bin/sh
# Runs the Queue throughput benchmark for crew and Python in one go.
# Usage: bench/queue/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/queue/crew_queue" "$repeats"
/usr/bin/python3 "$here/python_queue.py" "$repeats"
