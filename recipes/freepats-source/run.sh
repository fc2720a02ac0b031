#!/usr/bin/env bash
# A fifth SoundFont source (FreePats) in the shipped mel122's fine-tuning, against the same recipe without it.
#   ./run.sh STAGE [STOP_STAGE]   (every training stage resumable: rerun it to carry on)
#   1 train     with FreePats; the control (the shipped recipe, same step)
#   2 evaluate  raw cosine, identical trials
#   3 compare   Eq. 1 with Holm across the two reports
# Results: results/ here; the question, the table and the decision: docs/experiments/freepats-source.md
source "$(dirname "$0")/../lib.sh"
if on 1; then
  train500 mel122_freepats --config training/configs/ablation_mel122_freepats.yaml --init-from cache/models/mel122/clean
  train500 mel122_ctrl --config training/configs/mel122_rec.yaml --init-from cache/models/mel122/clean --set run.name=mel122_ctrl
fi
if on 2; then
  $PY -m mie_core evaluate --raw-only --model mel122_freepats500=runs/mel122_freepats/best \
    --model mel122=cache/models/mel122 --parts wet,real,test --no-probing --out recipes/freepats-source/results/freepats
  $PY -m mie_core evaluate --raw-only --model mel122_ctrl500=runs/mel122_ctrl/best \
    --parts wet,real,test --no-probing --out recipes/freepats-source/results/ctrl
fi
if on 3; then
  $PY -m mie_core compare recipes/freepats-source/results/freepats recipes/freepats-source/results/ctrl --parts test,wet,real
fi
