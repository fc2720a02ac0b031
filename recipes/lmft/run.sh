#!/usr/bin/env bash
# Large-margin fine-tuning of the shipped cqt122 on long crops (issue 29), in stages as
# WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt)
#   2 export   the best checkpoint into runs/cqt122_lmft/best (the trainer writes it)
#   3 evaluate clean, wet and real parts, real by source, against the shipped cqt122 (the
#     last checkpoint: the trainer's best is chosen on clean renders, where LMFT loses)
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_lmft
if on 1; then
  if [ -f $RUN/state.pt ]; then
    $PY -m training.train --resume $RUN/state.pt ${MAX_MINUTES:+--max-minutes $MAX_MINUTES}
  else
    $PY -m training.train --config recipes/lmft/cqt122_lmft.yaml --init-from cache/models/cqt122 \
      ${MAX_MINUTES:+--max-minutes $MAX_MINUTES}
  fi
fi
if on 3; then
  $PY benchmarks/real_members.py --model cqt122=cache/models/cqt122 --model lmft=$RUN/last
  $PY -m mie_core evaluate --model lmft=$RUN/last --model cqt122=cache/models/cqt122 \
    --parts test,wet,real --no-probing --out recipes/lmft/results
fi
