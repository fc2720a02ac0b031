# What every recipe's run.sh shares; sourced as `source "$(dirname "$0")/../lib.sh"` after its header.
# Puts the shell at the repository's root, reads STAGE [STOP_STAGE] (default: every stage) and
# gives `on N` (is stage N asked for?) and `train500 RUN ARGS...` (the experiments' fine-tuning
# runs, judged at step 500: runs/RUN resumed where it has a state, else started with ARGS),
# `finetune` (a fine-tuning run to its config's end, below) and `study_variant` (a study run
# with one thing changed, below).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stage=${1:-1}; stop=${2:-9}
PY=${PY:-.venv/bin/python}
on() { [ "$stage" -le "$1" ] && [ "$stop" -ge "$1" ]; }
train500() {
  local run=$1; shift
  if [ -f "runs/$run/state.pt" ]; then $PY -m training.train --resume "runs/$run/state.pt" --stop-at-step 500
  else $PY -m training.train "$@" --stop-at-step 500; fi
}
# `study_variant RUN BASE ARGS...`: the run folder RUN (runs/EXPERIMENT/NAME) trained as the study's
# run BASE (runs/study/NAME: its config, seed and split) with ARGS (--set ...) added, to the
# study's budget of 1,000 steps; resumed where RUN has a state.
study_variant() {
  local run=$1 base=$2; shift 2
  if [ -f "$run/state.pt" ]; then $PY -m training.train --resume "$run/state.pt" --stop-at-step 1000
  else
    test -f "$base/config.yaml" || { echo "needs the study's $base (python -m training.study run)"; exit 2; }
    $PY -m training.train --config "$base/config.yaml" --set run.name="$(basename "$run")" \
      --set run.out_dir="$(dirname "$run")" "$@" --stop-at-step 1000
  fi
}
# `finetune RUN CONFIG INIT`: the run folder RUN fine-tuned from the model INIT by CONFIG to its last
# step, resumed where RUN has a state (MAX_MINUTES: stop cleanly at a checkpoint after so many
# minutes; THREADS: torch's threads, when another job shares the cores).
finetune() {
  local run=$1 config=$2 init=$3
  if [ -f "$run/state.pt" ]; then $PY -m training.train --resume "$run/state.pt" ${MAX_MINUTES:+--max-minutes $MAX_MINUTES}
  else $PY -m training.train --config "$config" --init-from "$init" ${MAX_MINUTES:+--max-minutes $MAX_MINUTES} \
    ${THREADS:+--set run.threads=$THREADS}; fi
}
# `member_systems RUN MEMBER OUT NAME=MEMBERS...`: a copy of the shipped cache (RUN/system_cache)
# with RUN/last as the member MEMBER (e.g. cqt122/lmftvar), each system NAME=MEMBERS built there,
# all evaluated beside the shipped mel+cqt on identical trials (clean, wet, real by source) into OUT.
# PARTS (default test,wet,real): the parts scored, e.g. PARTS=real first on a slow CPU (the store
# keeps every embedding, so the full run later embeds only what is missing); PRECISION (default
# auto = the cache's): fp32 on a CPU without native bf16, where bf16 autocast is 5-7x slower (benchmarks/upload_embedding.py);
# MEMBERS ("NAME=CHECKPOINT ..."): members the shipped cache no longer holds, added to the copy first
# (cqt122/lmft=recipes/lmft/model: the LMFT member shipped until 2026-12-07, which the pairs member replaced).
LMFT_MEMBER=cqt122/lmft=recipes/lmft/model
member_systems() {
  local run=$1 member=$2 out=$3; shift 3
  local c=$run/system_cache args=() models=() extra=()
  for spec in "$@"; do args+=(--system "$spec"); models+=(--model "${spec%%=*}=$c/models/${spec%%=*}"); done
  for spec in ${MEMBERS:-}; do extra+=(--member "$spec"); done
  local parts=${PARTS:-test,wet,real} precision=${PRECISION:-auto}
  rm -rf "$c" && cp -a cache "$c"
  $PY -m training.build_cache --members-only --out "$c" "${extra[@]}" --member "$member=$run/last" --precision "$precision"
  $PY -m training.build_cache --systems-only --out "$c" "${args[@]}" --precision "$precision" --system-parts "$parts"
  $PY -m mie_core evaluate --model mel+cqt=cache/models/mel+cqt "${models[@]}" \
    --parts "$parts" --no-probing --precision "$precision" --out "$out"
}
