#!/usr/bin/env bash
# Large-margin fine-tuning of the shipped cqt122 on crops of varying length, 0.5-4 s (issue 29),
# against the shipped LMFT member (3-s crops), in stages as WeSpeaker's recipes:
# ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt; THREADS=1
#              beside another job)
#   3 members  raw centred cosine per real source against the shipped LMFT member (seconds
#              once embedded)
#   4 system   a copy of the shipped cache with the run as a member (cqt122/lmftvar), the
#     mel+cqt system with it in place of the LMFT member (four members), judged as the
#     README's per-source table (every real source held out): results/system
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_lmft_var
if on 1; then
  finetune $RUN recipes/lmft_var/cqt122_lmft_var.yaml cache/models/cqt122
fi
if on 3; then
  $PY benchmarks/real_members.py --model lmft=recipes/lmft/model --model lmft_var=$RUN/last
fi
if on 4; then
  member_systems $RUN cqt122/lmftvar recipes/lmft_var/results/system in_place=cqt122,cqt122/lmftvar,cqt122/clean,mel122/clean
fi
