#!/usr/bin/env bash
# Set-up + the gdbench command with the given arguments (default: the default study).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_TMPDIR=${RAY_TMPDIR:-/tmp/gdbench-ray-$(id -u)}
mkdir -p "$RAY_TMPDIR"
if [ $# -eq 0 ]; then set -- experiment=default; fi
exec .venv/bin/gdbench "$@"
