#!/usr/bin/env bash
# A pitch adversary (issue 29, item 3: an embedding that forgets register), measured against
# the study's CQT-122 condition (recipes/study/study.yaml): the same recipe, seed, split and
# budget (1,000 steps of 64 one-second clips), with one thing added: a MIDI-pitch classifier
# behind a gradient-reversal layer (head.pitch_weight; mie_core.nnet.heads.PitchAdversary).
#   ./run.sh STAGE [STOP_STAGE]     every stage resumable; rerun stage 1 to carry on
#   1 train      runs/pitch_adversary/cqt122_pitchW_pd_s100, stopped at the study's budget
#   2 export     its model at the budget (at1000/)
#   3 evaluate   the study's trials (clean, wet, each real source): eval_at1000.json
#   4 compare    against the study's cqt122_pd_s100 on identical trials (EER, z-test)
#   5 probe      the octave read from each embedding (instruments held out)
source "$(dirname "$0")/../lib.sh"
W=${W:-0.3}
BASE=runs/study/cqt122_pd_s100
NAME=cqt122_pitch$(echo "$W" | tr -d .)_pd_s100
RUN=runs/pitch_adversary/$NAME
if on 1; then
  study_variant $RUN $BASE --set head.pitch_weight=$W
fi
if on 2; then
  test -f $RUN/at1000/model.json || $PY -m training.train --export $RUN/state.pt --to $RUN/at1000
fi
if on 3; then
  $PY -m training.study_eval $RUN --at 1000
  test -f $BASE/eval_at1000.json || $PY -m training.study_eval $BASE --at 1000
fi
if on 4; then
  $PY benchmarks/study_pair.py $BASE/eval_at1000.json $RUN/eval_at1000.json
fi
if on 5; then
  $PY benchmarks/register_probe.py $BASE/at1000 $RUN/at1000   # how much register each embedding keeps
fi
