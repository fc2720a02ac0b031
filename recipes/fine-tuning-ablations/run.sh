#!/usr/bin/env bash
# Ablations of the shipped mel122's fine-tuning recipe, each from the same clean mel122, judged at step 500.
#   ./run.sh STAGE [STOP_STAGE]   (every training stage resumable: rerun it to carry on)
#   1 train     chain on half the clips; no played notes; neither chain nor played notes (the control)
#   2 evaluate  each against the shipped mel122 and the clean one, identical trials
# Results: results/ here; the question, the table and the decision: docs/experiments/fine-tuning-ablations.md
source "$(dirname "$0")/../lib.sh"
if on 1; then
  for a in half noperf ftclean; do
    train500 mel122_$a --config training/configs/ablation_mel122_$a.yaml --init-from cache/models/mel122/clean
  done
fi
if on 2; then
  for a in half noperf ftclean; do
    $PY -m mie_core evaluate --model mel122_${a}500=runs/mel122_$a/best --model mel122=cache/models/mel122 \
      --model mel122_clean=cache/models/mel122/clean --parts wet,real,test --no-probing \
      --out recipes/fine-tuning-ablations/results/$a
  done
fi
