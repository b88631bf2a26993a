#!/usr/bin/env bash
# Sets up okng from a fresh clone: system libraries Qt needs (Debian/Ubuntu, when run as root
# or with sudo), a virtual environment in .venv and okng with its test extras.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libglib2.0-0 libdbus-1-3 \
libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0 \
libxcb-image0 libxcb-xinerama0 libxcb-xkb1 mbpoll"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
fi
if [ -n "$missing" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
  if [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; then
    echo "okng setup: installing system packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  else
    echo "okng setup: please install these Debian packages:$missing" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "okng setup: creating .venv"
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import app, torch, torchvision, PyQt6, pytestqt" >/dev/null 2>&1 \
   || [ setup.cfg -nt .venv/.okng-installed ]; then
  echo "okng setup: installing okng and its dependencies into .venv (torch is large: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch .venv/.okng-installed
fi
echo "okng setup: ready (.venv/bin/okng)"
