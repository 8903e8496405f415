#!/usr/bin/env bash
# The main job: `tickpath demo` in the project's own venv (created on first use).
# Extra arguments go to `tickpath demo` (e.g. --seconds 5 --json out.json).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/ci/env.sh")"
exec "$VENV/bin/tickpath" demo "$@"
