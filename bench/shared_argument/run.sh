#!/bin/sh
# Runs the shared-argument benchmark for crew and joblib in one go.
# Usage: bench/shared_argument/run.sh [BUILD_DIR] [REPEATS]
set -eu
build=${1:-build/release}
repeats=${2:-5}
here=$(dirname "$0")
"$build/bench/shared_argument/crew_shared_argument" "$repeats"
if /usr/bin/python3 -c "import joblib, numpy" 2>/dev/null; then
    /usr/bin/python3 "$here/python_shared_argument.py" "$repeats"
else
    echo "joblib or numpy not found (apt-get install python3-joblib python3-numpy): their figures are absent"
fi
