#!/usr/bin/env bash
# Distillation from the clean mel122 while fine-tuning through the recording chain (weights 1 and 4).
#   ./run.sh STAGE [STOP_STAGE]   (every training stage resumable: rerun it to carry on)
#   1 train     distill.weight 1 and 4, from the clean mel122
#   2 evaluate  against the shipped mel122 and the clean one, identical trials
# Results: results/ here; the question, the table and the decision: docs/experiments/distillation.md
source "$(dirname "$0")/../lib.sh"
if on 1; then
  for w in 1 4; do
    train500 mel122_distill$w --config training/configs/distill_mel122.yaml --init-from cache/models/mel122/clean \
      --set distill.weight=$w --set run.name=mel122_distill$w
  done
fi
if on 2; then
  $PY -m mie_core evaluate --model mel122_distill1=runs/mel122_distill1/best --model mel122_distill4=runs/mel122_distill4/best \
    --model mel122=cache/models/mel122 --model mel122_clean=cache/models/mel122/clean --parts wet,real,test \
    --no-probing --out recipes/distillation/results
fi
