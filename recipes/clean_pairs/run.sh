#!/usr/bin/env bash
# Register pairs on cqt122's clean partner (issue 29), in stages as WeSpeaker's recipes:
# ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt; THREADS=1
#              beside another job, MAX_MINUTES to stop at a checkpoint)
#   3 members  raw centred cosine per real source against the shipped partner
#   4 system   a copy of the shipped cache with the run as a member (cqt122/cleanpairs), the
#     mel+cqt system with it in place of cqt122's clean partner, judged as the README's
#     per-source table (every real source held out): results/system (PARTS=real first on a
#     slow CPU, then the full run embeds only what the store lacks)
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_clean_pairs
if on 1; then
  finetune $RUN recipes/clean_pairs/cqt122_clean_pairs.yaml cache/models/cqt122/clean
fi
if on 3; then
  $PY benchmarks/real_members.py --model clean=cache/models/cqt122/clean --model clean_pairs=$RUN/last
fi
if on 4; then
  member_systems $RUN cqt122/cleanpairs recipes/clean_pairs/results/system \
    in_place=cqt122,cqt122/pairs,cqt122/cleanpairs,mel122/clean
fi
