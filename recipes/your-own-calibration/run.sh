#!/usr/bin/env bash
# Each shipped model and its clean partner scored alone (the figures the library's own calibration is set against).
#   ./run.sh STAGE [STOP_STAGE]   (every training stage resumable: rerun it to carry on)
#   1 evaluate  the four members, identical trials
# Results: results/ here; the question, the table and the decision: docs/experiments/your-own-calibration.md
source "$(dirname "$0")/../lib.sh"
if on 1; then
  $PY -m mie_core evaluate --model cqt122=cache/models/cqt122 --model mel122=cache/models/mel122 \
    --model cqt122_clean=cache/models/cqt122/clean --model mel122_clean=cache/models/mel122/clean \
    --parts test,wet,real --no-probing --out recipes/your-own-calibration/results
fi
