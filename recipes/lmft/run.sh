#!/usr/bin/env bash
# Large-margin fine-tuning of the shipped cqt122 on long crops (issue 29), in stages as
# WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt)
#   2 export   the best checkpoint into runs/cqt122_lmft/best (the trainer writes it)
#   3 evaluate clean, wet and real parts, real by source, against the shipped cqt122 (the
#     last checkpoint: the trainer's best is chosen on clean renders, where LMFT loses)
#   4 system   the shipped mel+cqt with LMFT in place of its chain-trained cqt122 (three members,
#     fitted as the cache fits them), then with both kept (four), each judged as the README's
#     per-source table (every real source held out), both in one report: results/system
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_lmft
if on 1; then
  finetune $RUN recipes/lmft/cqt122_lmft.yaml cache/models/cqt122
fi
if on 3; then
  $PY benchmarks/real_members.py --model cqt122=cache/models/cqt122 --model lmft=$RUN/last
  $PY -m mie_core evaluate --model lmft=$RUN/last --model cqt122=cache/models/cqt122 \
    --parts test,wet,real --no-probing --out recipes/lmft/results
fi
if on 4; then
  C=$RUN/system_cache
  $PY -m training.build_cache --model cqt122=$RUN/last --clean cqt122=cache/models/cqt122/clean \
    --model mel122=cache/models/mel122 --clean mel122=cache/models/mel122/clean \
    --system mel+cqt=cqt122,cqt122/clean,mel122/clean --precision bf16 --parts test,valid,wet,real \
    --no-probing --out $C
  # the shipped chain-trained cqt122 as a fourth member, with its shipped back-end
  mkdir -p $C/models/cqt122_ship
  cp cache/models/cqt122/model.* cache/models/cqt122/backend* cache/models/cqt122/centroids.npy \
    cache/models/cqt122/instruments.json $C/models/cqt122_ship/
  $PY -m training.build_cache --systems-only --out $C \
    --system mel+cqt4=cqt122,cqt122_ship,cqt122/clean,mel122/clean
  $PY -m mie_core evaluate --model lmft_in_place=$C/models/mel+cqt --model lmft_beside=$C/models/mel+cqt4 \
    --parts test,wet,real --no-probing --out recipes/lmft/results/system
fi
