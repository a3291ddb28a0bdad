#!/usr/bin/env bash
# Set-up + the whole test suite (slow tests included). The tests start the Ray instances they
# use themselves (an embedded local Ray, and a two-node cluster on 127.0.0.1) and stop them by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_TMPDIR=${RAY_TMPDIR:-/tmp/gdbench-ray-$$}
mkdir -p "$RAY_TMPDIR"
.venv/bin/python -m pytest "$@"
