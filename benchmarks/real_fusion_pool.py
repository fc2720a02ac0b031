"""Fusion weights fitted on real notes and renders together: can one fit hold on both?

    python benchmarks/real_fusion_pool.py [SYSTEM ...]     # default: mel+cqt

The system's fusion weights (its own detector and back-ends) are refitted by prior-weighted
logistic regression on the real trials of the other sources together with the calibration's
own held-out render trials (valid instruments clean and through the training rooms), the
renders weighted 0, 0.25, 0.5, 1 and 2 times the real trials. Each line: clean test and wet
EER % (verdicts genuine accepted / impostors rejected % at prior 50 %) with the weights
fitted on all real trials, then each real source with the weights fitted without it. The
shipped real-notes fusion is the first line (renders weighted 0).
"""
import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

import _common  # noqa: F401  (puts the repository on the path)
from mie_core.data.corpus import Corpus, default_corpus_dir  # noqa: E402
from mie_core.evaluation import protocol  # noqa: E402
from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision  # noqa: E402
from mie_core.evaluation.parts import load_parts, real_sources_part  # noqa: E402
from mie_core.scoring import fusion, metrics, sources  # noqa: E402
from mie_core.scoring.fitting import CALIBRATION_PARTS, held_out_trials  # noqa: E402
from mie_core.service.verify import load_verifier  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("system", nargs="*", default=["mel+cqt"], help="shipped systems under cache/models")
    args = p.parse_args()
    prec, store = resolve_precision("auto"), EmbeddingStore()
    parts = load_parts(Corpus.load(default_corpus_dir()), ("test", "wet") + CALIBRATION_PARTS, "program_disjoint")
    real = real_sources_part()
    for name in args.system:
        ver = load_verifier(Path("cache/models") / name, prec)
        def feats(part, trs):
            emb = ver.join(*[embed_models({m.name: m}, part, store, prec, log=print)[m.name] for m in ver.member_paths])
            b, mem = ver.fusion_members(emb)
            return [(fusion.trial_features(b, ver.fusion, mem, d), d.target) for d in trs]
        cal = []
        for k, p in enumerate(CALIBRATION_PARTS):
            cal += feats(parts[p], [held_out_trials(parts[p], 0, k)])
        Xc = np.concatenate([f for f, _ in cal]); Tc = np.concatenate([t for _, t in cal])
        rdraws = protocol.protocol_draws(real.rows["instrument_str"].to_numpy(), 0, 5)
        R = feats(real, rdraws)
        src = real.rows["source"].to_numpy()
        test = {p: feats(parts[p], protocol.protocol_draws(parts[p].rows["instrument_str"].to_numpy(), 0, 5)) for p in ("test", "wet")}
        for wr in (0.0, 0.25, 0.5, 1.0, 2.0):  # weight of the render trials against the real ones
            def fit(x, t, xc=Xc, tc=Tc):
                X = np.concatenate([x, xc]); T = np.concatenate([t, tc])
                sw = np.concatenate([np.ones(len(t)), np.full(len(tc), wr * len(t) / max(1, len(tc)))])
                # prior-weighted logistic regression with sample weights (a light ridge, as the fusion's)
                pt = 0.5; lo = np.log(pt / (1 - pt))
                wt = np.where(T, pt / (sw[T].sum()), (1 - pt) / (sw[~T].sum())) * sw
                Xa = np.c_[X, np.ones(len(X))]
                def f(v):
                    z = Xa @ v + lo; y = np.where(T, 1.0, -1.0)
                    l = np.logaddexp(0, -y * z); g = -(y / (1 + np.exp(y * z)))
                    return (wt * l).sum() + 1e-4 * (v[:-1] ** 2).sum(), Xa.T @ (wt * g) + np.r_[2e-4 * v[:-1], 0]
                v = minimize(f, np.zeros(Xa.shape[1]), jac=True, method="L-BFGS-B").x
                return v[:-1], v[-1]
            recs = []
            for (x, t), d in zip(R, rdraws):
                es, ts = sources.trial_sources(src, d.enroll, d.model, d.test)
                out, _ = sources.leave_one_source_out(x, t, es, ts, fit=fit)
                r = sources.source_rates(out, t, es); r["pooled"] = {"eer": metrics.eer(out[t], out[~t]), **sources.verdict_rates(out, t)}
                recs.append(r)
            w, b = fit(np.concatenate([x for x, _ in R]), np.concatenate([t for _, t in R]))
            line = []
            for p in ("test", "wet"):
                e = [metrics.eer((x @ w + b)[t], (x @ w + b)[~t]) for x, t in test[p]]
                g = [np.mean((x @ w + b)[t] >= 0) for x, t in test[p]]; i = [np.mean((x @ w + b)[~t] < 0) for x, t in test[p]]
                line.append(f"{p} {100*np.mean(e):.2f} ({100*np.mean(g):.0f}/{100*np.mean(i):.0f})")
            print(f"{name} renders x{wr}: " + "  ".join(line) + " | real held out: " + "  ".join(
                f"{s} {100*np.mean([r[s]['eer'] for r in recs]):.1f} ({100*np.mean([r[s]['genuine_accepted'] for r in recs]):.0f}/{100*np.mean([r[s]['impostors_rejected'] for r in recs]):.0f})" for s in recs[0]), flush=True)


if __name__ == "__main__":
    main()
