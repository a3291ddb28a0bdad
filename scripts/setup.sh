#!/usr/bin/env bash
# Creates .venv (if missing) and installs gdbench with its test dependencies into it.
# Installs a CPU torch first when none is importable, so that the package's `torch>=2.3` range
# never pulls a multi-GB CUDA build onto a CPU machine. GPU users: install your CUDA torch into
# .venv first (or set GDBENCH_TORCH_SPEC), and this script keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q "${GDBENCH_TORCH_SPEC:-torch==2.13.0}"
fi
# Re-install only when the package metadata changed (a stamp keyed on pyproject.toml).
stamp=.venv/.gdbench-installed
want=$(sha1sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
