#!/bin/sh
# Installs the Debian packages crew builds with, when any is missing. Safe to run again.
set -eu
packages="g++ cmake make pkg-config libcereal-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev libtbb-dev libsodium-dev libzmq3-dev cppzmq-dev nlohmann-json3-dev python3"
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: run as root, or install these packages first:$missing" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq $missing >/dev/null
fi
