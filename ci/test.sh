#!/usr/bin/env bash
# The test suite in the project's own venv (created on first use, with the test extra).
# Extra arguments go to pytest. Exit code 5 (no tests collected) is a failure here.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/ci/env.sh" test)" || exit 1
cd "$ROOT"
# the RTL co-simulation's simulators and Yosys (apt, as root, only when missing; else they skip)
bash "$ROOT/ci/rtl-tools.sh"
"$VENV/bin/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "ci/test.sh: pytest collected no tests — failing" >&2
    exit 1
fi
exit "$rc"
