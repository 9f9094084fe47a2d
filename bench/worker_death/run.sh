#!/bin/sh
# Runs the worker-death benchmark for crew and Python in one go.
# Usage: bench/worker_death/run.sh [BUILD_DIR] [KILLS]
set -eu
build=${1:-build/release}
kills=${2:-40}
here=$(dirname "$0")
"$build/bench/worker_death/crew_worker_death" "$kills"
/usr/bin/python3 "$here/python_worker_death.py" "$kills"
