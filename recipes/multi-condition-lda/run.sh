#!/usr/bin/env bash
# A multi-condition LDA in the back-end (no training: the shipped models' back-ends refitted).
#   ./run.sh STAGE [STOP_STAGE]   (every training stage resumable: rerun it to carry on)
#   1 evaluate  the shipped models with an LDA of 64 dimensions (the page's table)
# Results: results/ here; the question, the table and the decision: docs/experiments/multi-condition-lda.md
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=${1:-1}; stop=${2:-9}
PY=${PY:-.venv/bin/python}
on() { [ "$stage" -le "$1" ] && [ "$stop" -ge "$1" ]; }
train() {  # train RUN ARGS...: resume runs/RUN where it has a state
  local run=$1; shift
  if [ -f runs/$run/state.pt ]; then $PY -m training.train --resume runs/$run/state.pt --stop-at-step 500
  else $PY -m training.train "$@" --stop-at-step 500; fi
}
if on 1; then
  $PY -m mie_core evaluate --lda-dims 64 --model cqt122=cache/models/cqt122 --model mel122=cache/models/mel122 \
    --parts test,wet,real --no-probing --out recipes/multi-condition-lda/results
fi
