"""Verdicts on real recordings with the model's own calibration against the user's (My instruments), on identical trials.

    python benchmarks/user_calibration.py [--model NAME=PATH ...] [--splits 20] [--clips 5] [--instruments 10]
                                          [--from-enrolments] [--shrink 10]

The shipped calibration is fitted on held-out corpus instruments, clean and through
simulated rooms; on real recordings its verdicts accept 97 % of genuine trials but only
81-82 % of impostors are rejected (README). *My instruments* lets a user fit their own
calibration, ``a llr + b``, on labelled recordings of instruments they enrolled
(:meth:`mie_core.service.library.InstrumentLibrary.calibrate`). This measures what that gives, as a
user would do it, with the real part (tonejs recordings, 20 instruments): per split,
``--instruments`` (10) instruments drawn at random are the user's; each is enrolled from 5 of its notes and
``--clips`` more of its notes are the labelled clips the calibration is fitted on (in a
temporary library, through the library's own code). Verdicts at prior 0.5 are then
counted on trials the calibration never saw:

* ``own instruments``: the user's 10 instruments, enrolment as above, every other note of
  them a trial against every enrolled instrument;
* ``other instruments``: the other 10, enrolled and tried by the paper's protocol (5
  enrolment notes, 20 + 20 trials).

Per system and case: genuine accepted / impostors rejected (%, pooled over the splits)
with the model's calibration and with the user's, and the user's over the model's. Both
sides score identical trials. Embeddings come from the one store (``data/embeddings``).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common  # noqa: E402

from mie_core.scoring import trials  # noqa: E402
from mie_core.service.library import USER_SHRINK, InstrumentLibrary  # noqa: E402
from mie_core.evaluation.report import parse_model_arg  # noqa: E402
from mie_core.evaluation.embeddings import embed_models  # noqa: E402
from mie_core.service.verify import load_verifier, verify  # noqa: E402

DEFAULT_MODELS = ("cqt122=cache/models/cqt122", "mel122=cache/models/mel122", "mel+cqt=cache/models/mel+cqt")


def rates(acc: dict) -> str:
    g, i = np.mean(acc["genuine"]), np.mean(acc["impostor"])
    return f"{100 * g:5.1f} / {100 * i:5.1f}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="NAME=PATH of a shipped model or system folder (default: all three)")
    p.add_argument("--splits", type=int, default=20)
    p.add_argument("--clips", type=int, default=5, help="labelled clips per instrument for the user's calibration")
    p.add_argument("--instruments", type=int, default=10,
                   help="how many of the 20 real instruments are the user's (enrolled; the rest are 'other')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--from-enrolments", action="store_true",
                   help="calibrate on the enrolment clips alone (leave one out), no labelled clips")
    p.add_argument("--shrink", type=float, default=USER_SHRINK,
                   help="pseudo-trials that agree with the model's calibration (the library's default: %(default)s)")
    args = p.parse_args()
    parts, precision, store = _common.evaluation_parts(("real",))
    if "real" not in parts:
        raise SystemExit("no real recordings here: python -m mie_core fetch")
    rows = parts["real"].rows.reset_index(drop=True)
    labels = rows["instrument_str"].to_numpy()
    names = np.unique(labels)
    print("| system | trials | model's calibration: genuine accepted / impostors rejected % | the user's | "
          "user's over model's (genuine / impostors) |")
    print("|---|---|---|---|---|")
    for name, path in (parse_model_arg(m) for m in (args.model or DEFAULT_MODELS)):
        ver = load_verifier(path, precision)
        emb = ver.join(*[embed_models({name: p}, parts["real"], store, precision, log=print)[name]
                         for p in ver.member_paths])  # each member's embeddings, as ver.embed lays them out
        rng = np.random.default_rng(args.seed)
        acc = {case: {side: {"genuine": [], "impostor": []} for side in ("model", "user")}
               for case in ("own instruments", "other instruments")}
        for _ in range(args.splits):
            own = rng.permutation(names)[: args.instruments]
            with tempfile.TemporaryDirectory() as tmp:
                lib = InstrumentLibrary(ver.hash, Path(tmp))
                held, cal_clips, cal_labels = [], [], []
                for inst in own:
                    idx = rng.permutation(np.flatnonzero(labels == inst))
                    lib.add(inst, emb[idx[:5]], [f"{i}" for i in idx[:5]])
                    cal_clips.extend(idx[5:5 + args.clips])
                    cal_labels.extend([inst] * len(idx[5:5 + args.clips]))
                    held.extend((i, inst) for i in idx[5 + args.clips:])
                if args.from_enrolments:  # the labelled clips are then trials like the rest
                    lib.calibrate_from_enrolments(ver, shrink=args.shrink)
                    held.extend(zip(cal_clips, cal_labels))
                else:
                    lib.calibrate(ver, emb[cal_clips], cal_labels, shrink=args.shrink)
                user = lib.calibration
                enrolled = lib.embeddings()
                test_idx = np.array([i for i, _ in held])
                test_lab = np.array([lab for _, lab in held])
                for side, cal in (("model", None), ("user", user)):
                    for inst, e in enrolled.items():
                        ok = verify(ver, e, emb[test_idx], recalibration=cal)["accept"].to_numpy(bool)
                        acc["own instruments"][side]["genuine"].extend(ok[test_lab == inst])
                        acc["own instruments"][side]["impostor"].extend(~ok[test_lab != inst])
                other = np.flatnonzero(~np.isin(labels, own))
                tr = trials.make_trials(labels[other], rng)
                for side, cal in (("model", None), ("user", user)):
                    for m in range(len(tr.model_label)):
                        sel = tr.model == m
                        ok = verify(ver, emb[other][tr.enroll[m]], emb[other][tr.test[sel]],
                                    recalibration=cal)["accept"].to_numpy(bool)
                        acc["other instruments"][side]["genuine"].extend(ok[tr.target[sel]])
                        acc["other instruments"][side]["impostor"].extend(~ok[~tr.target[sel]])
        for case, a in acc.items():
            ratio = " / ".join(f"{np.mean(a['user'][k]) / np.mean(a['model'][k]):.2f}" for k in ("genuine", "impostor"))
            print(f"| {name} | {case} ({len(a['model']['genuine'])} + {len(a['model']['impostor'])}) | "
                  f"{rates(a['model'])} | {rates(a['user'])} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
