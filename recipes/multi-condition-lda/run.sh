#!/usr/bin/env bash
# A multi-condition LDA in the back-end (no training: the shipped models' back-ends refitted).
#   ./run.sh STAGE [STOP_STAGE]   (every training stage resumable: rerun it to carry on)
#   1 evaluate  the shipped models with an LDA of 64 dimensions (the page's table)
# Results: results/ here; the question, the table and the decision: docs/experiments/multi-condition-lda.md
source "$(dirname "$0")/../lib.sh"
if on 1; then
  $PY -m mie_core evaluate --lda-dims 64 --model cqt122=cache/models/cqt122 --model mel122=cache/models/mel122 \
    --parts test,wet,real --no-probing --out recipes/multi-condition-lda/results
fi
