#!/usr/bin/env bash
# First command of the README: set up, then open the workstation. On first start okng creates
# a demo project and starts the simulated 4-camera rig and the built-in PLC simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/okng "$@"
