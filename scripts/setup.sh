#!/usr/bin/env bash
# Creates .venv (if missing) and installs gdbench with its test dependencies into it; as root on
# Debian, also installs the system tools the report tests use when they are missing (see below).
# Installs a CPU torch first when none is importable, so that the package's `torch>=2.3` range
# never pulls a multi-GB CUDA build onto a CPU machine. GPU users: install your CUDA torch into
# .venv first (or set GDBENCH_TORCH_SPEC), and this script keeps it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

# System tools of the report tests: pdflatex (with booktabs) compiles the LaTeX tables, pdffonts
# inspects the PDF figures' fonts, chromium and chromedriver render index.html (test_report_browser).
# Installed from Debian's archive only when one is missing and this runs as root with apt-get
# (CI: a fresh Debian machine); otherwise one line says what is missing and nothing is installed.
missing=() packages=()
need() {  # need COMMAND PACKAGE...: remember the packages of a command that is not on PATH
  command -v "$1" >/dev/null 2>&1 || { missing+=("$1"); packages+=("${@:2}"); }
}
need pdflatex texlive-latex-base texlive-latex-recommended
need pdffonts poppler-utils
need chromium chromium
need chromedriver chromium-driver
if command -v pdflatex >/dev/null 2>&1 && ! kpsewhich booktabs.sty >/dev/null 2>&1; then
  missing+=(booktabs.sty); packages+=(texlive-latex-recommended)  # a bare TeX without the tables' package
fi
if [ ${#missing[@]} -gt 0 ]; then
  read -r -a packages <<< "$(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')"
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${packages[*]} (missing: ${missing[*]})"
    # a failed install must not stop the set-up: the other tests still run, these fail and say why
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${packages[@]}"; } || echo "setup: apt-get failed; the LaTeX and browser tests will fail"
  else
    echo "setup: missing ${missing[*]} (Debian: ${packages[*]}); the LaTeX and browser tests will fail without" \
         "them (run scripts/setup.sh as root on Debian to install them)"
  fi
fi

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
