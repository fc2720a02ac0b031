#!/usr/bin/env bash
# Large-margin fine-tuning of cqt122's clean partner on long crops (issue 29), in stages as
# WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt)
#   3 members  raw centred cosine per real source against the shipped partner (seconds once embedded)
#   4 system   a copy of the shipped cache with the run as a member (cqt122/cleanlmft), the
#     mel+cqt system with it in place of cqt122's clean partner (four members) and beside it
#     (five), both judged as the README's per-source table (every real source held out) in
#     one report: results/system
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_clean_lmft
if on 1; then
  finetune $RUN recipes/lmft_clean/cqt122_clean_lmft.yaml cache/models/cqt122/clean
fi
if on 3; then
  $PY benchmarks/real_members.py --model clean=cache/models/cqt122/clean --model clean_lmft=$RUN/last
fi
if on 4; then
  # the LMFT member as it shipped when this was measured (the cache holds the pairs member since 2026-12-07)
  MEMBERS=$LMFT_MEMBER member_systems $RUN cqt122/cleanlmft recipes/lmft_clean/results/system \
    in_place=cqt122,cqt122/lmft,cqt122/cleanlmft,mel122/clean beside=cqt122,cqt122/lmft,cqt122/clean,cqt122/cleanlmft,mel122/clean
fi
