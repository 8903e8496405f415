#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install tickpath into it.
# Used by ci/demo.sh and ci/test.sh; needs only Python >= 3.11 and the package registries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TICKPATH_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
EXTRA="${1:-}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "tickpath needs Python >= 3.11"'
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.tickpath-installed${EXTRA:+-$EXTRA}"
# reinstall when pyproject.toml changed since the last install
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT${EXTRA:+[$EXTRA]}" >&2
    touch "$STAMP"
fi
echo "$VENV"
