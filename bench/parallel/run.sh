#!/bin/sh
# Runs the Parallel benchmark for crew and joblib in one go.
# Usage: bench/parallel/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-3}
here=$(dirname "$0")
"$build/bench/parallel/crew_parallel" "$repeats"
if /usr/bin/python3 -c "import joblib" 2>/dev/null; then
    /usr/bin/python3 "$here/python_parallel.py" "$repeats"
else
    echo "joblib not found (apt-get install python3-joblib): its figures are absent"
fi
