# What every recipe's run.sh shares; sourced as `source "$(dirname "$0")/../lib.sh"` after its header.
# Puts the shell at the repository's root, reads STAGE [STOP_STAGE] (default: every stage) and
# gives `on N` (is stage N asked for?) and `train500 RUN ARGS...` (the experiments' fine-tuning
# runs, judged at step 500: runs/RUN resumed where it has a state, else started with ARGS).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stage=${1:-1}; stop=${2:-9}
PY=${PY:-.venv/bin/python}
on() { [ "$stage" -le "$1" ] && [ "$stop" -ge "$1" ]; }
train500() {
  local run=$1; shift
  if [ -f "runs/$run/state.pt" ]; then $PY -m training.train --resume "runs/$run/state.pt" --stop-at-step 500
  else $PY -m training.train "$@" --stop-at-step 500; fi
}
