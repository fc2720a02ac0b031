#!/usr/bin/env bash
# Large-margin fine-tuning of the shipped cqt122 with register pairs (issue 29: an embedding that
# forgets register), against the shipped LMFT member (the same recipe without the pairs), in
# stages as WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt; THREADS=1
#              beside another job)
#   3 members  raw centred cosine per real source against the shipped LMFT member
#   4 system   a copy of the shipped cache with the run as a member (cqt122/pairs), the mel+cqt
#     system with it in place of the LMFT member (four members), judged as the README's
#     per-source table (every real source held out): results/system
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_pairs
if on 1; then
  finetune $RUN recipes/register_pairs/cqt122_pairs.yaml cache/models/cqt122
fi
if on 3; then
  $PY benchmarks/real_members.py --model lmft=cache/models/cqt122/lmft --model pairs=$RUN/last
fi
if on 4; then
  member_systems $RUN cqt122/pairs recipes/register_pairs/results/system in_place=cqt122,cqt122/pairs,cqt122/clean,mel122/clean
fi
