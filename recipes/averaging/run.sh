#!/usr/bin/env bash
# The weights averaged over the last steps (issue 29, item 3: "averaging the last
# checkpoints", WeSpeaker's last-N average, here at every step, SWA-like at the schedule's
# still-high learning rate), measured against the same run's last weights and the study's
# CQT-122 condition (recipes/study/study.yaml): the same recipe, seed, split and budget
# (1,000 steps of 64 one-second clips), with run.average_from_step=700.
#   ./run.sh STAGE [STOP_STAGE]     every stage resumable; rerun stage 1 to carry on
#   1 train      runs/averaging/cqt122_avg700_pd_s100, stopped at the study's budget
#   2 export     its last weights (at1000/) and their average since step 700 (avg1000/)
#   3 evaluate   the study's trials (clean, wet, each real source): eval_at1000.json, eval_avg1000.json
#   4 compare    last against averaged, and the study's run against this one's last (same seed: the
#                run-to-run noise of one recipe on this CPU)
source "$(dirname "$0")/../lib.sh"
FROM=${FROM:-700}
BASE=runs/study/cqt122_pd_s100
NAME=cqt122_avg${FROM}_pd_s100
RUN=runs/averaging/$NAME
if on 1; then
  study_variant $RUN $BASE --set run.average_from_step=$FROM
fi
if on 2; then
  test -f $RUN/at1000/model.json || $PY -m training.train --export $RUN/state.pt --to $RUN/at1000
  test -f $RUN/avg1000/model.json || $PY -m training.train --export $RUN/state.pt --to $RUN/avg1000 --averaged
fi
if on 3; then
  test -f $RUN/eval_at1000.json || $PY -m training.study_eval $RUN --at 1000
  test -f $RUN/eval_avg1000.json || $PY -m training.study_eval $RUN --at 1000 --averaged
  test -f $BASE/eval_at1000.json || $PY -m training.study_eval $BASE --at 1000
fi
if on 4; then
  $PY benchmarks/study_pair.py $RUN/eval_at1000.json $RUN/eval_avg1000.json
  $PY benchmarks/study_pair.py $BASE/eval_at1000.json $RUN/eval_at1000.json
fi
