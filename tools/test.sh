#!/usr/bin/env bash
# Second command of the README (and what CI runs): the architecture contract, lint, then the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash tools/setup.sh
export QT_QPA_PLATFORM=offscreen
# Child processes a test starts import this checkout, also from a git worktree sharing the venv.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
echo "== import contracts (only app/ imports Qt; rooms layered) =="
.venv/bin/lint-imports --config setup.cfg
echo "== ruff =="
.venv/bin/ruff check .
echo "== tests =="
.venv/bin/python -m pytest -q "$@"
