#!/usr/bin/env bash
# Large-margin fine-tuning of the shipped cqt122 with register pairs (issue 29: an embedding that
# forgets register), against the shipped LMFT member (the same recipe without the pairs), in
# stages as WeSpeaker's recipes: ./run.sh STAGE [STOP_STAGE]. Every stage is resumable.
#   1 train    fine-tune (background-friendly: rerun to carry on from state.pt; THREADS=1
#              beside another job)
#   2 parts    raw cosine on the study's parts (clean, wet, real by source) against the shipped
#              LMFT member, as every study run is judged: results/parts.md (about 35 minutes
#              here, fp32)
#   3 members  raw centred cosine per real source against the shipped LMFT member
#   4 system   a copy of the shipped cache with the run as a member (cqt122/pairs), the mel+cqt
#     system with it in place of the LMFT member (four members), judged as the README's
#     per-source table (every real source held out): results/system. On a CPU without bf16:
#     PRECISION=fp32 (the cache's bf16 is emulated there, 5-7x slower); PARTS=real first
#     (done 2026-12-07), then the full run embeds only what the store lacks
#   5 added    the mel+cqt system with both fine-tuned members, LMFT and pairs (five), judged as
#              stage 4: results/system_added (after stage 4, only the LMFT member's fitting parts
#              are new to the store)
source "$(dirname "$0")/../lib.sh"
RUN=runs/cqt122_pairs
# the run's model as trained on 2026-12-06 (model/, 15 MB, its hash checked on load): stages 2-4 read
# it where this machine has no run of its own, so a later session on a new machine carries on
if ! on 1 && [ ! -f $RUN/last/model.safetensors ]; then mkdir -p $RUN && cp -a recipes/register_pairs/model $RUN/last; fi
if on 1; then
  finetune $RUN recipes/register_pairs/cqt122_pairs.yaml cache/models/cqt122
fi
if on 2; then
  mkdir -p recipes/register_pairs/results
  $PY benchmarks/member_parts.py --model lmft=recipes/lmft/model --model pairs=$RUN/last \
    | tee recipes/register_pairs/results/parts.md
fi
if on 3; then
  $PY benchmarks/real_members.py --model lmft=recipes/lmft/model --model pairs=$RUN/last
fi
if on 4; then
  member_systems $RUN cqt122/pairs recipes/register_pairs/results/system in_place=cqt122,cqt122/pairs,cqt122/clean,mel122/clean
fi
if on 5; then
  MEMBERS=$LMFT_MEMBER member_systems $RUN cqt122/pairs recipes/register_pairs/results/system_added \
    added=cqt122,cqt122/lmft,cqt122/pairs,cqt122/clean,mel122/clean
fi
