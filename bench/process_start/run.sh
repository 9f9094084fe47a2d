#!/bin/sh
# Runs the process-start benchmark for crew, bare fork and Python in one go.
# Usage: bench/process_start/run.sh [BUILD_DIR] [ROUNDS]
set -eu
build=${1:-build/release}
rounds=${2:-200}
here=$(dirname "$0")
echo "who    method      median_us     p90_us"
"$build/bench/process_start/bare_fork_start" "$rounds"
"$build/bench/process_start/crew_process_start" "$rounds"
/usr/bin/python3 "$here/python_process_start.py" "$rounds"
