#!/usr/bin/env bash
# The RTL tools the FPGA co-simulation and synthesis report use: Icarus Verilog, Verilator,
# Yosys (Debian packages). Idempotent: installs only what is missing, and only as root with
# apt-get; otherwise it says what is missing and leaves the tests to skip with the reason.
# Never fails the caller: a missing tool is a skip, not an error.
set -uo pipefail
need=()
command -v iverilog >/dev/null 2>&1 && command -v vvp >/dev/null 2>&1 || need+=(iverilog)
command -v verilator >/dev/null 2>&1 || need+=(verilator)
command -v yosys >/dev/null 2>&1 || need+=(yosys)
command -v g++ >/dev/null 2>&1 || need+=(g++)      # Verilator compiles C++
command -v make >/dev/null 2>&1 || need+=(make)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ci/rtl-tools.sh: missing ${need[*]} (not root or no apt-get): RTL tests will skip" >&2
    exit 0
fi
echo "ci/rtl-tools.sh: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
        || echo "ci/rtl-tools.sh: could not install ${need[*]}: RTL tests will skip" >&2
fi
exit 0
