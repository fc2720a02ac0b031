#!/usr/bin/env bash
# The shipped models and the cache, in stages as WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE].
# Every run is named as the folder it ships as (runs/shipped/NAME -> cache/models/NAME, and
# NAME_clean -> cache/models/NAME/clean); every stage is resumable (a finished run is skipped,
# a started one carries on from its state.pt).
#   1 prepare   soundfonts, real test notes, the corpus (make corpus)
#   2 train     the clean partners, cqt122_clean and mel122_clean (about an hour each here)
#   3 train     mel122, fine-tuned from mel122_clean for real recordings
#   4 train     cqt122, the recipe for real recordings from scratch (one GPU: 15 H100 minutes), then
#               cqt122_pairs, its large-margin fine-tuning on 3-s crops with register pairs
#               (recipes/register_pairs; about 5 h here), a member only the mel+cqt system uses
#               (cache/models/cqt122/pairs; until 2026-12-07 the same without the pairs, cqt122/lmft)
#   5 cache     cache/ as cache/manifest.json records its build, from the four runs
#   6 evaluate  the README's tables (clean, wet, real by source) into recipes/shipped/results_system
#               (mel+cqt) and recipes/shipped/results (the pairs)
# `make train-shipped` is stages 2-4 and `make cache` stage 5 (each after `make corpus`, stage 1's work).
source "$(dirname "$0")/../lib.sh"
R=runs/shipped
here=recipes/shipped

train() {  # train NAME [ARGS...]: skip a finished run, resume a started one, else start it
  local name=$1; shift
  if [ -d $R/$name/last ]; then echo "$R/$name: finished"; return; fi
  if [ -f $R/$name/state.pt ]; then $PY -m training.train --resume $R/$name/state.pt
  else $PY -m training.train --config $here/$name.yaml "$@"; fi
}

if on 1; then
  $PY -m mie_core fetch
  test -f data/corpus/corpus.json || $PY -m mie_core corpus --out data/corpus
fi
if on 2; then
  train cqt122_clean
  train mel122_clean
fi
if on 3; then
  train mel122 --init-from $R/mel122_clean/best
fi
if on 4; then
  train cqt122
  # its last checkpoint ships (the trainer's best is chosen on clean renders, where LMFT loses)
  if [ -d $R/cqt122_pairs/last ]; then echo "$R/cqt122_pairs: finished"
  elif [ -f $R/cqt122_pairs/state.pt ]; then $PY -m training.train --resume $R/cqt122_pairs/state.pt
  else $PY -m training.train --config recipes/register_pairs/cqt122_pairs.yaml --init-from $R/cqt122/best \
    --set run.out_dir=$R; fi
fi
if on 5; then
  # the steps cache/manifest.json records, in its order
  $PY -m training.build_cache --model mel122=$R/mel122/best --model cqt122=$R/cqt122/best \
    --clean mel122=$R/mel122_clean/best --clean cqt122=$R/cqt122_clean/best \
    --system mel+cqt=cqt122,cqt122/clean,mel122,mel122/clean --precision bf16 --parts test,valid,wet,real
  $PY -m training.build_cache --probing-only
  # the LMFT member as shipped 2026-12-06 (its weights are kept in recipes/lmft/model) ...
  $PY -m training.build_cache --members-only --member cqt122/lmft=recipes/lmft/model
  $PY -m training.build_cache --systems-only --system mel+cqt=cqt122,cqt122/lmft,cqt122/clean,mel122/clean
  $PY -m training.build_cache --pitch-gaps-only
  $PY -m training.build_cache --weights-hashes-only
  $PY -m training.build_cache --real-calibration-only
  # ... and the register-pairs member in its place since 2026-12-07, at fp32 (that CPU had no native bf16)
  $PY -m training.build_cache --members-only --member cqt122/pairs=$R/cqt122_pairs/last --precision fp32
  $PY -m training.build_cache --systems-only --system mel+cqt=cqt122,cqt122/pairs,cqt122/clean,mel122/clean \
    --precision fp32
  $PY -m training.build_cache --drop-member cqt122/lmft
  $PY -m training.build_cache --pitch-gaps-only --precision fp32
  $PY -m training.build_cache --weights-hashes-only
  $PY -m training.build_cache --real-calibration-only --precision fp32
  $PY -m mie_core verify-cache
fi
if on 6; then
  # the system apart (its results_system of 2026-12-07 at fp32, the pairs' results at the cache's bf16)
  $PY -m mie_core evaluate --model mel+cqt=cache/models/mel+cqt --parts test,wet,real --no-probing \
    --out $here/results_system
  $PY -m mie_core evaluate --model cqt122=cache/models/cqt122 --model mel122=cache/models/mel122 \
    --parts test,wet,real --no-probing --out $here/results
fi
