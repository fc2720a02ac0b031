#!/usr/bin/env bash
# Register pairs with sibling impostors (issue 29), against the shipped register-pairs member,
# in stages as WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune from the shipped cqt122 (background-friendly: rerun to carry on from
#              state.pt; THREADS=1 beside another job; MAX_MINUTES to stop at a checkpoint)
#   3 members  raw centred cosine per real source against the shipped pairs member (results/real_members.md)
#   4 system   a copy of the shipped cache with the run as a member (cqt122/siblings), the mel+cqt
#              system with it in place of the pairs member, judged as the README's per-source
#              table (every real source held out, 20 draws) beside what ships: results/system
#              (PRECISION=fp32 on a CPU without native bf16; PARTS=real: the real notes alone, as measured)
# On a lent GPU: FINETUNE=recipes/sibling_pairs/cqt122_siblings.yaml recipes/gpu/run.sh 2 3 (one call;
# its export $OUT/cqt122_pairs_gpu is the model stages 3-4 read as runs/cqt122_siblings/last).
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_siblings
if on 1; then
  finetune $RUN recipes/sibling_pairs/cqt122_siblings.yaml cache/models/cqt122
fi
if on 3; then
  mkdir -p recipes/sibling_pairs/results
  $PY benchmarks/real_members.py --model pairs=cache/models/cqt122/pairs --model siblings=$RUN/last \
    | tee recipes/sibling_pairs/results/real_members.md
fi
if on 4; then
  member_systems $RUN cqt122/siblings recipes/sibling_pairs/results/system \
    in_place=cqt122,cqt122/siblings,cqt122/clean,mel122/clean
fi
