"""``python -m mie_core evaluate``: the paper's tables and figures for trained models.

    python -m mie_core evaluate --model runs/cqt122/best --model runs/mel122/best \\
        --corpus data/corpus --split program_disjoint --out reports/test

Embeds the evaluation notes of the split once per model (cached under
``data/embeddings`` by checkpoint hash and corpus fingerprint), adds the MFCC
statistics baseline, scores every model on the same trials
(:func:`mie_core.evaluation.protocol.compare_models`), runs the probing classifiers, and
writes into ``--out``:

* ``results.json``: every number behind every table and figure;
* ``tables.md``: Tables II-III (EER per condition, mean +- std), per-model detail,
  Table IV (probing F1 and relative improvement over majority);
* ``det.png``, ``significance.png``, ``tsne_family.png``, ``probing.png``;
* ``trials.txt`` / ``enroll.txt`` (Kaldi style) and ``scores_<model>.txt`` of the
  first draw, so another tool can re-score the same trials.

This module does the file I/O; the computations are the pure functions of
:mod:`mie_core.evaluation.protocol`, :mod:`mie_core.explore.probing` and :mod:`mie_core.explore.maps`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core.evaluation import baseline, protocol
from mie_core.explore import maps, probing
from mie_core.scoring import fusion, metrics, trials
from mie_core.scoring.fitting import BACKEND_PARTS, FUSION_PARTS, LDA_PARTS, fit_backends, fit_fusions
from mie_core.data.corpus import Corpus, default_corpus_dir
from mie_core.evaluation.embeddings import EmbeddingStore, embed_models, resolve_precision
from mie_core.evaluation.parts import Part, evaluation_notes, load_parts  # noqa: F401  (evaluation_notes: the builder's)

BASELINE = "mfcc_baseline"


def score_part(embeddings: dict[str, np.ndarray], part: Part, seed: int = 0, n_draws: int = 5,
               with_baseline: bool = True, backends: dict | None = None, fusions: dict | None = None) -> dict:
    """Every model (and the MFCC baseline) on identical trials of one part
    (:func:`mie_core.evaluation.protocol.compare_models`; its ``_trials``/``_scores`` kept); models
    with a back-end are also scored centred, AS-normed and calibrated on the same trials,
    and fused models (``fusions``: name -> (partner back-end, partner embeddings of this
    part, fusion)) as the fused system."""
    emb = dict(embeddings)
    if with_baseline:
        emb[BASELINE] = baseline.mfcc_stats(part.audio())
    return protocol.compare_models(emb, part.rows["instrument_str"].to_numpy(),
                                     part.rows["instrument_family_str"].to_numpy(), seed=seed, n_draws=n_draws,
                                     backends=backends, fusions=fusions)


def is_system(path: Path) -> bool:
    """A folder of a system of several models (:func:`mie_core.scoring.fusion.folder_kind`)."""
    return fusion.folder_kind(path) == "system"


def system_results(path: Path, part: Part, store: EmbeddingStore | None = None, precision: str = "auto",
                   seed: int = 0, n_draws: int = 5, log=None) -> dict:
    """A shipped system of several models on one part, as shipped (its members' back-ends and
    its fusion as saved, nothing refitted), on the trials every model of the part is scored
    on (:func:`mie_core.evaluation.protocol.protocol_draws`): :func:`mie_core.evaluation.protocol.member_fusion_results`,
    its ``members``, and on the real part the identification rates of its centroids."""
    from mie_core.service.verify import identification_rates, load_verifier

    ver = load_verifier(path, precision)
    root = Path(path).parent
    paths = ver.member_paths
    emb = [embed_models({p.name: p}, part, store, precision, log=log)[p.name] for p in paths]
    draws = protocol.protocol_draws(part.rows["instrument_str"].to_numpy(), seed, n_draws)
    backends, members = ver.fusion_members(ver.join(*emb))
    rec = protocol.member_fusion_results(backends, members, ver.fusion, draws)
    if part.name == "real" and ver.centroids is not None:
        rec["identify"] = identification_rates(ver.identify_vectors(ver.join(*emb)), ver.centroids, ver.instruments,
                                               part.rows)
    return {"fused": rec, "members": [str(p.relative_to(root)) for p in paths], "main": ver.fusion.main}


def system_trial_scores(path: Path, part: Part, draws: list, store: EmbeddingStore | None = None,
                        precision: str = "auto", log=None) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Per trial draw, the calibrated LLR of every trial by a shipped model or system folder
    as the Verify page scores it with the model's own calibration (its members' back-ends and
    fusion as saved), and for a fused one the fusion's features of every trial
    (:func:`mie_core.scoring.fusion.trial_features`; None for a model alone), its members'
    embeddings through the one store."""
    from mie_core.service.verify import load_verifier

    ver = load_verifier(path, precision)
    emb = ver.join(*[embed_models({p.name: p}, part, store, precision, log=log)[p.name] for p in ver.member_paths])
    if ver.fused:
        backends, members = ver.fusion_members(emb)
        feats = [fusion.trial_features(backends, ver.fusion, members, d) for d in draws]
        return [x @ ver.fusion.fusion.weights + ver.fusion.fusion.offset for x in feats], feats
    return [fusion.scoring_llr(ver.backend, emb, d) for d in draws], None


def system_trial_llrs(path: Path, part: Part, draws: list, store: EmbeddingStore | None = None,
                      precision: str = "auto", log=None) -> list[np.ndarray]:
    """:func:`system_trial_scores`' LLRs alone."""
    return system_trial_scores(path, part, draws, store, precision, log)[0]


def system_members(path: Path, part: Part, store: EmbeddingStore | None = None, precision: str = "auto",
                   log=None) -> tuple:
    """(verifier, members' back-ends, members' embeddings of the part's notes) of a fused
    system folder, in the member order (main first), through the one store."""
    from mie_core.service.verify import load_verifier

    ver = load_verifier(path, precision)
    emb = ver.join(*[embed_models({p.name: p}, part, store, precision, log=log)[p.name] for p in ver.member_paths])
    return (ver, *ver.fusion_members(emb))


def mode_rates(feature_draws: list, draws: list, own, studio, p_studio: np.ndarray, prior: float = 0.5,
               auto_margin: float = 0.0) -> dict:
    """EER and verdict rates (means over draws) of the three ways a fused system can score a
    part: its own fusion, the weights refitted on real notes, and the automatic mix (the
    refitted weights' LLR lowered by ``auto_margin`` there, as the pages score)."""
    from mie_core.scoring.condition import mixed_llr, trial_weight
    from mie_core.scoring.sources import verdict_rates

    acc: dict = {}
    for x, d in zip(feature_draws, draws):
        llr_own, llr_studio = x @ own.weights + own.offset, x @ studio.weights + studio.offset
        for mode, llr in (("own", llr_own), ("studio", llr_studio),
                          ("auto", mixed_llr(llr_own, llr_studio - auto_margin, trial_weight(p_studio, d)))):
            r = {"eer": metrics.eer(llr[d.target], llr[~d.target]), **verdict_rates(llr, d.target, prior)}
            acc.setdefault(mode, []).append(r)
    return {m: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for m, rs in acc.items()}


def source_results(paths: dict[str, Path], store: EmbeddingStore | None = None, precision: str = "auto",
                   seed: int = 0, n_draws: int = 5, log=None, clip_midi: np.ndarray | None = None,
                   part: Part | None = None, condition_parts: tuple[Part, Part] | None = None,
                   render_parts: dict[str, Part] | None = None) -> dict | None:
    """Real notes source by source (:mod:`mie_core.scoring.sources`) for every shipped model or system
    folder of ``paths`` (:func:`system_trial_scores`) on the real notes of every source
    fetched, pooled (:func:`mie_core.evaluation.parts.real_sources_part`): per source and
    pooled, EER and both verdict rates with the model's own calibration, with the affine
    recalibration fitted without the source, for a fused system with its fusion's weights
    refitted without the source (what the pages use on real recordings), and, with
    ``clip_midi``, with the pitch gap.
    A folder without a calibrated back-end is listed under ``not_measured`` with the reason.
    None where no real notes were fetched. ``part``: other notes with a ``source`` column
    (the tests' renders). Each system's ``fit``: that map fitted on every trial of every
    source (``kind`` "fusion" or "affine", ``weights``, ``offset``), what the cache ships.

    ``condition_parts`` (renders clean, renders through rooms: the ``valid`` and ``calib``
    parts): a fused system also gets ``auto``, the automatic choice between its own fusion and
    the refitted weights (:func:`mie_core.scoring.sources.measure_auto`, the condition model and
    the weights fitted without the source), and its ``fit`` the condition model fitted on every
    source (``condition``); with ``render_parts`` too ({name: part}, the ``test`` and ``wet``
    parts), ``renders``: the three modes' figures on each (:func:`mode_rates`)."""
    from mie_core.evaluation.parts import real_sources_part
    from mie_core.scoring.sources import fit_real_calibration, fit_real_fusion, measure_sources

    part = part if part is not None else real_sources_part()
    if part is None:
        return None
    rows = part.rows
    draws = protocol.protocol_draws(rows["instrument_str"].to_numpy(), seed, n_draws)
    out = {"notes": int(len(rows)), "instruments": rows.groupby("source")["instrument_str"].nunique().to_dict(),
           "instrument_names": {s: sorted(g["instrument_str"].unique().tolist()) for s, g in rows.groupby("source")},
           "trials": int(sum(d.target.size for d in draws)), "draws": n_draws, "seed": seed, "systems": {},
           "not_measured": {}}
    for name, path in paths.items():
        if not (is_system(path) or (Path(path) / "backend.json").exists()):
            out["not_measured"][name] = "no calibrated back-end in the folder (the shipped folders have one)"
            continue
        llrs, feats = system_trial_scores(Path(path), part, draws, store, precision, log)
        rec = measure_sources(llrs, draws, rows["source"].to_numpy(), clip_midi, feature_draws=feats)
        # what ships (real_calibration.json): the same map fitted on every trial of every source
        if feats is not None:
            weights, offset = fit_real_fusion(feats, draws)
            rec["fit"] = {"kind": "fusion", "weights": [float(x) for x in weights], "offset": offset}
            if condition_parts is not None:
                rec.update(_condition_results(Path(path), part, draws, feats, condition_parts, render_parts or {},
                                              (weights, offset), store, precision, log, seed))
        else:
            a, offset = fit_real_calibration(llrs, draws)
            rec["fit"] = {"kind": "affine", "weights": [a], "offset": offset}
        out["systems"][name] = rec
    return out


def _condition_results(path: Path, part: Part, draws: list, feats: list, condition_parts, render_parts: dict,
                       studio_fit: tuple, store, precision: str, log, seed: int = 0) -> dict:
    """``auto``, the condition model fitted on every source, and ``renders`` for one fused
    system (:func:`source_results`): the model reads :data:`CONDITION_INPUTS` of each clip."""
    from mie_core.scoring.condition import STUDIO, fit_condition_model
    from mie_core.scoring.fusion import Fusion, trial_features
    from mie_core.scoring.sources import auto_margin, measure_auto
    from mie_core.service.verify import load_verifier

    store = store or EmbeddingStore()
    x = {name: condition_inputs(path, p, store, precision, log)
         for name, p in (("real", part), ("render", condition_parts[0]), ("room", condition_parts[1]))}
    own = load_verifier(path, precision).fusion.fusion
    src = part.rows["source"].to_numpy()
    out = {"auto": measure_auto(feats, draws, src, x["real"], x["render"], x["room"], own.weights, own.offset,
                                c=CONDITION_C, margin=CONDITION_MARGIN, inputs=CONDITION_INPUTS)}
    model = fit_condition_model(x["render"], x["room"], x["real"], c=CONDITION_C, inputs=CONDITION_INPUTS)
    out["auto_margin"] = (auto_margin(feats, draws, src, model.proba(x["real"])[:, STUDIO], own.weights, own.offset)
                          if CONDITION_MARGIN else 0.0)
    out["condition"] = {**model.to_dict(), "c": CONDITION_C,
                        "fitted_on": {"render": int(len(x["render"])), "room": int(len(x["room"])),
                                      "studio": int(len(x["real"]))}}
    studio = Fusion(np.asarray(studio_fit[0], float), float(studio_fit[1]))
    out["renders"] = {}
    for name, p in render_parts.items():
        ver, backends, members = system_members(path, p, store, precision, log)
        d = protocol.protocol_draws(p.rows["instrument_str"].to_numpy(), seed, len(draws))
        f = [trial_features(backends, ver.fusion, members, t) for t in d]
        p_studio = model.proba(condition_inputs(path, p, store, precision, log, (backends, members)))[:, STUDIO]
        out["renders"][name] = mode_rates(f, d, own, studio, p_studio, auto_margin=out["auto_margin"])
    return out


def condition_inputs(path: Path, part: Part, store: EmbeddingStore, precision: str = "auto", log=None,
                     members: tuple | None = None) -> np.ndarray:
    """(n, k) what the condition model reads of each of a part's notes (:data:`CONDITION_INPUTS`):
    the six recording features (through the store, computed once), a fused system's member
    vectors, or both side by side (the recording features first). ``members``: the system's
    (back-ends, members' embeddings) of the part where the caller holds them already."""
    from mie_core.scoring.fusion import member_vectors

    out = []
    if CONDITION_INPUTS != "members":
        if log and not store.recording_path(part.key).exists():
            log(f"recording features of the {part.name} part ({len(part.rows)} notes)")
        out.append(store.recording(part.key, part.audio))
    if CONDITION_INPUTS != "recording":
        out.append(member_vectors(*(members or system_members(path, part, store, precision, log)[1:])))
    return np.hstack(out)


# trial draws behind every real figure per source (the cache's real calibration, evaluate's
# per-source tables): a source of one instrument has 20 + 20 trials per draw, and over 5 draws its
# verdict rates moved by a trial or two from one set of draws to the next (89.0 -> 85.0 % of the
# piano's impostors rejected, 5 -> 20 draws; docs/experiments/register-pairs.md#draws)
REAL_DRAWS = 20
CONDITION_C = 0.1  # the condition model's inverse L2 strength (benchmarks/studio_condition.py)
# what it reads of a clip, and whether the refitted weights are lowered by a margin for unseen
# sources in the automatic mix (docs/experiments/studio-condition.md#both: the recording features
# beside the member vectors, no margin, hold both verdict rates at 90 % or more on every source)
CONDITION_INPUTS = "recording+members"
CONDITION_MARGIN = False


def markdown_sources(res: dict) -> str:
    """The per-source tables of :func:`source_results` (EER %; genuine accepted / impostors
    rejected % at prior 0.5; means over the draws), with each source's trials per draw and the
    95 % Wilson interval of the pages' default's verdict rates on one draw's trials
    (:func:`mie_core.scoring.sources.verdict_intervals`): the draws reuse the same notes, so one
    draw's count is the honest n, and a source with one instrument (20 genuine trials) cannot
    tell 90 % from 80 %."""
    from mie_core.scoring.sources import verdict_intervals

    n_inst = res["instruments"]
    out = []
    for name, r in res["systems"].items():
        kinds = [("before", "the model's own calibration"), ("loso", "recalibrated without the source")]
        kinds += [("fusion", "fusion refitted without the source")] if "fusion" in r else []
        kinds += [("auto", "automatic: own or refitted by the clip's sound (the pages' default)")] if "auto" in r else []
        kinds += [("quality", "with the pitch gap, without the source")] if "quality" in r else []
        default = next(k for k in ("auto", "fusion", "before") if k in r)
        lines = [f"**{name}** (EER %; genuine accepted / impostors rejected % at prior 0.5)", "",
                 "| source (instruments) | trials per draw (genuine / impostor) | "
                 + " | ".join(f"{label}: EER | verdicts" for _, label in kinds)
                 + f" | {dict(kinds)[default].split(':')[0]}: 95 % interval of the verdicts |",
                 "|---|---:|" + "---:|---:|" * len(kinds) + "---:|"]
        for s in [k for k in r["before"] if k != "pooled"] + ["pooled"]:
            label = f"{s} ({n_inst.get(s, sum(n_inst.values()))})"
            d = r[default][s]
            n_t, n_n = r["before"][s].get("n_target", 0), r["before"][s].get("n_nontarget", 0)
            cells = [f"{100 * r[k][s]['eer']:.2f} | {100 * r[k][s]['genuine_accepted']:.1f} / "
                     f"{100 * r[k][s]['impostors_rejected']:.1f}" for k, _ in kinds]
            interval = verdict_intervals({**d, "n_target": n_t, "n_nontarget": n_n})
            lines.append(f"| {label} | {n_t:.0f} / {n_n:.0f} | " + " | ".join(cells) + f" | {interval} |")
        if r.get("renders"):
            lines += ["", f"{name} on renders (EER %; genuine accepted / impostors rejected %): " + "; ".join(
                f"{part}: " + ", ".join(f"{m} {100 * v['eer']:.2f} ({100 * v['genuine_accepted']:.1f} / "
                                        f"{100 * v['impostors_rejected']:.1f})" for m, v in modes.items())
                for part, modes in r["renders"].items())]
        out.append("\n".join(lines))
    out += [f"**{name}**: not measured ({why})" for name, why in res.get("not_measured", {}).items()]
    return "\n\n".join(out)


def partner_of(path: Path) -> Path | None:
    """The clean partner of a pair's folder (:func:`mie_core.scoring.fusion.partner_folder`), or None."""
    return fusion.partner_folder(path)


def parse_model_arg(arg: str) -> tuple[str, Path]:
    """``NAME=PATH`` or ``PATH`` (named after its run: config run.name, or the folder)."""
    if "=" in arg:
        name, path = arg.split("=", 1)
        return name, Path(path)
    path = Path(arg)
    folder = path if path.is_dir() else path.parent
    try:
        meta = json.loads((folder / "model.json").read_text())
        run = meta["provenance"]["config"]["run"]
        return f"{run['name']}_s{run['seed']}", path
    except (OSError, KeyError, ValueError):
        return folder.name, path


def condition_of(path: Path) -> str:
    folder = path if path.is_dir() else path.parent
    try:
        return json.loads((folder / "model.json").read_text())["provenance"]["config"]["run"]["name"]
    except (OSError, KeyError, ValueError):
        return folder.name


def run_evaluation(models: list[str], corpus_dir: str | Path | None, split: str = "program_disjoint",
                   parts: tuple[str, ...] = ("test", "wet", "real"), out: str | Path = "reports/eval", seed: int = 0,
                   n_draws: int = 5, probing_on: bool = True, classifiers=probing.CLASSIFIERS, progress=None, log=None,
                   store: EmbeddingStore | None = None, probe_notes: int | None = 2000,
                   precision: str = "auto", backends: bool = True, lda_dims: int | None = None,
                   real_draws: int = REAL_DRAWS) -> dict:
    """Run the whole evaluation and write the report (module docstring). Returns results.

    The first of ``parts`` gets the whole report (probing, t-SNE, trial lists); every part
    gets verification on identical trials for every model and the MFCC baseline, over
    ``n_draws`` trial draws; the real notes' per-source figures over ``real_draws``
    (:data:`REAL_DRAWS`).
    """
    log = log or (lambda m: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus.load(corpus_dir or default_corpus_dir())
    render_progress = (lambda d, t: progress("render", d, t)) if progress else None
    loaded = load_parts(corpus, tuple(parts), split, progress=render_progress)
    named = [parse_model_arg(m) for m in models]
    # a system of several models (a folder whose fusion.json names its members) is scored as shipped
    systems = [(n, p) for n, p in named if is_system(p)]
    named = [(n, p) for n, p in named if not is_system(p)]
    # a fused model folder (mie_core.scoring.fusion) is scored alone and as the fused system with its clean partner
    partners = {name: partner_of(path) for name, path in named} if backends else {}
    partners = {k: v for k, v in partners.items() if v is not None}
    aux_names = BACKEND_PARTS + (LDA_PARTS if lda_dims else ()) + (("bankwet",) if partners else ())
    aux = load_parts(corpus, tuple(dict.fromkeys(aux_names)), split, progress=render_progress) if backends else {}
    if not loaded:
        raise ValueError(f"none of the parts {', '.join(parts)} has notes here")
    precision = resolve_precision(precision)  # as the cache builder: bf16 where the CPU has it
    if len({n for n, _ in named}) != len(named):
        raise ValueError("two models have the same name; name them with NAME=PATH")
    conditions = {name: condition_of(path) for name, path in named}
    conditions[BASELINE] = BASELINE
    fitted, bank_emb = {}, {}
    if backends:
        log("fitting the scoring back-ends (" + ", ".join(BACKEND_PARTS) + " parts)")
        fitted, bank_emb = fit_backends(dict(named), aux, store, precision, seed, log, lda_dims)
    partner_be, fusions = {}, {}
    if partners:
        log("fitting the clean partners' back-ends and the fusions (" + ", ".join(FUSION_PARTS) + " parts)")
        partner_be, _ = fit_backends(partners, aux, store, precision, seed, log, lda_dims)
        fusions = fit_fusions({n: (dict(named)[n], partners[n]) for n in partners}, aux, fitted, partner_be, store,
                              precision, seed, log)
    by_part: dict[str, dict] = {}
    primary = None
    for pname, part in loaded.items():
        if part.rows.empty:
            raise ValueError(f"the {split} split has no {pname} notes")
        log(f"{pname}: {len(part.rows)} notes of {part.rows['instrument_str'].nunique()} instruments")
        emb = embed_models(dict(named), part, store, precision, progress, log)
        log(f"{pname}: scoring trials")
        fused = {n: (partner_be[n], embed_models({n: partners[n]}, part, store, precision, progress, log)[n], fusions[n])
                 for n in partners}
        res = score_part(emb, part, seed, n_draws, backends=fitted, fusions=fused)
        if pname == "real" and fitted:  # no real instrument is in the corpus: a fair test of identification
            from mie_core.service.verify import identification_rates, instrument_centroids

            for name in fitted:
                cents, info = instrument_centroids(fitted[name], bank_emb[name], aux["bank"].rows)
                res["models"][name]["identify"] = identification_rates(fitted[name].vectors(emb[name]), cents, info,
                                                                         part.rows)
        for name, path in systems:
            res.setdefault("systems", {})[name] = system_results(path, part, store, precision, seed, n_draws, log)
        first: trials.Trials = res.pop("_trials")
        scores = res.pop("_scores")
        by_part[pname] = res
        if primary is None:
            primary = (part, emb, res, first, scores)
    sources = None
    if "real" in loaded:
        log("real notes source by source")
        cond = load_parts(corpus, ("valid", "calib"), split, progress=render_progress)  # the condition model's renders
        sources = source_results({**dict(named), **dict(systems)}, store, precision, seed, real_draws, log,
                                 condition_parts=(cond["valid"], cond["calib"]),
                                 render_parts={k: loaded[k] for k in ("test", "wet") if k in loaded})
    part, embeddings, res, first, scores = primary
    rows = part.rows
    embeddings = {**embeddings, BASELINE: baseline.mfcc_stats(part.audio())}
    table = protocol.condition_table(res, conditions)

    probe_rows, skipped = [], {}
    if probing_on:
        pidx = probing.subsample(len(rows), probe_notes, np.random.default_rng(seed))
        labels = probing.probe_labels(rows.iloc[pidx].reset_index(drop=True))
        for name, emb in embeddings.items():
            log(f"probing {name} on {len(pidx)} notes")
            rs, sk = probing.run_probes(emb[pidx], labels, seed, classifiers,
                                        progress=(lambda d, t, msg, n=name: progress(f"probe {n}", d, t)) if progress else None)
            probe_rows += [{"model": name, **r.as_dict()} for r in rs]
            skipped.update(sk)
    probe_table = pd.DataFrame(probe_rows)

    log("t-SNE at one pitch")
    idx = maps.one_pitch(rows)
    tsne = {}
    for name, emb in embeddings.items():
        if len(idx) >= 5:
            tsne[name] = maps.fit_map(emb[idx], "tsne", seed=seed).coords
    res["precision"] = precision
    res["embed_bf16"] = precision == "bf16"
    _write(out, res, table, probe_table, skipped, first, scores, rows, idx, tsne, conditions, split, part.name, by_part,
           sources)
    return {**res, "parts": by_part, **({"sources": sources} if sources else {})}


def _write(out: Path, res, table, probe_table, skipped, first, scores, rows, idx, tsne, conditions, split, part,
           by_part=None, sources=None):
    from mie_core.evaluation import plots

    ids = rows["note_str"].to_numpy()
    trial_text, enroll_text = trials.trials_to_text(first, ids)
    (out / "trials.txt").write_text(trial_text)
    (out / "enroll.txt").write_text(enroll_text)
    for name, s in scores.items():
        lines = [f"{l} {sc:.6f}" for l, sc in zip(trial_text.splitlines(), s)]
        (out / f"scores_{name}.txt").write_text("\n".join(lines) + "\n")
    full = {
        "split": split, "part": part, "n_notes": int(len(rows)), "verification": res, "conditions": conditions,
        "table": table.to_dict(orient="records"), "probing": probe_table.to_dict(orient="records"),
        "probing_skipped": skipped, "parts": by_part or {}, **({"sources": sources} if sources else {}),
        "tsne_family": {n: {"coords": c.tolist(), "note_str": ids[idx].tolist(),
                            "family": rows["instrument_family_str"].to_numpy()[idx].tolist(),
                            "pitch": int(rows["pitch"].iloc[idx[0]]) if len(idx) else None} for n, c in tsne.items()},
    }
    (out / "results.json").write_text(json.dumps(full, indent=1, default=json_default))
    (out / "tables.md").write_text(markdown_tables(full))
    figs = {"det.png": plots.det_figure(res)}
    if "significance" in res:
        figs["significance.png"] = plots.significance_figure(res)
    for name, c in tsne.items():
        figs[f"tsne_family_{name}.png"] = plots.map_figure(
            c, rows["instrument_family_str"].to_numpy()[idx],
            f"{name}: t-SNE of unseen instruments at MIDI {full['tsne_family'][name]['pitch']}")
    if not probe_table.empty:
        figs["probing.png"] = plots.probing_figure(probe_table)
    for fname, fig in figs.items():
        fig.savefig(out / fname, dpi=110)
        plots.plt.close(fig)


def json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    raise TypeError(type(o))


def markdown_tables(full: dict) -> str:
    """Tables II-IV in Markdown from a results.json dictionary."""
    v = full["verification"]
    lines = [f"# Evaluation on the {full['split']} split ({full['part']}): {v['n_instruments']} unseen instruments, "
             f"{full['n_notes']} notes", "",
             f"Protocol: {v['protocol']['n_enroll']} enrolment clips averaged, {v['protocol']['n_target']} target and "
             f"{v['protocol']['n_nontarget']} non-target trials per instrument, cosine scores, drawn without "
             f"replacement; {v['n_target']} target / {v['n_nontarget']} non-target trials per draw, "
             f"{v['n_draws']} draws (seed {v['seed']}).", "",
             "## EER per condition (Tables II-III shape)", "",
             "| condition | models | EER (%) | std over | minDCF(0.01) |", "|---|---:|---:|---|---:|"]
    for r in full["table"]:
        lines.append(f"| {r['condition']} | {r['models']} | {r['eer_percent']:.2f} +- {r['std_percent']:.2f} | "
                     f"{r['std_over']} | {r['min_dcf']:.3f} |")
    lines += ["", "## Per model", "",
              "| model | EER ROCCH (%) | 95 % interval (instruments) | EER interp (%) | minDCF | threshold |",
              "|---|---:|---|---:|---:|---:|"]
    for name, m in v["models"].items():
        lines.append(f"| {name} | {100 * m['eer']:.2f} +- {100 * m['eer_std']:.2f} | "
                     f"{100 * m['eer_ci'][0]:.2f}-{100 * m['eer_ci'][1]:.2f} | {100 * m['eer_interp']:.2f} | "
                     f"{m['min_dcf']:.3f} | {m['threshold']:.3f} |")
        if "fused" in m:  # the model with its clean partner (mie_core.scoring.fusion): LLR scores, no cosine threshold
            f = m["fused"]
            lines.append(f"| {name} (fused) | {100 * f['eer']:.2f} +- {100 * f['eer_std']:.2f} | | | {f['min_dcf']:.3f} | |")
    if len(full.get("parts") or {}) > 1:
        lines += ["", "## EER by part (ROCCH %, mean +- std over draws; identical trials within a part)", "",
                  "| model | " + " | ".join(full["parts"]) + " |", "|---|" + "---:|" * len(full["parts"])]
        names = list(next(iter(full["parts"].values()))["models"])
        for name in names:
            for kind in ("raw cosine", "asnorm", "fused"):
                cells = []
                for p in full["parts"].values():
                    m = p["models"].get(name, {})
                    m = m if kind == "raw cosine" else m.get(kind)
                    cells.append(f"{100 * m['eer']:.2f} +- {100 * m['eer_std']:.2f}" if m else "")
                if any(cells):
                    lines.append(f"| {name} ({kind}) | " + " | ".join(cells) + " |")
        lines += ["", "Calibrated verdicts (LLR >= 0 at prior 0.5): Cllr (bits), actual DCF, miss / false-alarm rates", "",
                  "| model | part | Cllr | actDCF | P_miss | P_fa |", "|---|---|---:|---:|---:|---:|"]
        for name in names:
            for kind in ("calibrated", "fused"):
                for pname, p in full["parts"].items():
                    c = p["models"].get(name, {}).get(kind)
                    if c:
                        label = name if kind == "calibrated" else f"{name} (fused)"
                        lines.append(f"| {label} | {pname} | {c['cllr']:.3f} | {c['act_dcf']:.3f} | "
                                     f"{100 * c['p_miss']:.1f} % | {100 * c['p_fa']:.1f} % |")
        system_names = list(next(iter(full["parts"].values())).get("systems", {}))
        for name in system_names:  # systems of several models: fused only
            cells = [p.get("systems", {}).get(name, {}).get("fused") for p in full["parts"].values()]
            lines.insert(lines.index("Calibrated verdicts (LLR >= 0 at prior 0.5): Cllr (bits), actual DCF, miss / "
                                     "false-alarm rates") - 1,
                         f"| {name} (system, fused) | " + " | ".join(
                             f"{100 * c['eer']:.2f} +- {100 * c['eer_std']:.2f}" if c else "" for c in cells) + " |")
            for pname, p in full["parts"].items():
                c = p.get("systems", {}).get(name, {}).get("fused")
                if c:
                    lines.append(f"| {name} (system) | {pname} | {c['cllr']:.3f} | {c['act_dcf']:.3f} | "
                                 f"{100 * c['p_miss']:.1f} % | {100 * c['p_fa']:.1f} % |")
        ident = [(n, p["models"][n]["identify"]) for p in full["parts"].values() for n in names
                 if "identify" in p["models"].get(n, {})]
        ident += [(f"{n} (system)", p["systems"][n]["fused"]["identify"]) for p in full["parts"].values()
                  for n in system_names if "identify" in p.get("systems", {}).get(n, {}).get("fused", {})]
        if ident:
            lines += ["", "Identification of real notes against all corpus instruments (best per GM program)", "",
                      "| model | family top-1 | program top-1 | program top-5 |", "|---|---:|---:|---:|"]
            for n, r in ident:
                lines.append(f"| {n} | {100 * r['family_top1']:.1f} % | {100 * r['program_top1']:.1f} % | "
                             f"{100 * r['program_top5']:.1f} % |")
    if "significance" in v:
        s = v["significance"]
        lines += ["", "## Significance (Eq. 1, Holm-Bonferroni over all pairs, alpha 0.05, first draw)", "",
                  "| A | B | z | p (Holm) | significant |", "|---|---|---:|---:|---|"]
        for i, a in enumerate(s["names"]):
            for j in range(i + 1, len(s["names"])):
                lines.append(f"| {a} | {s['names'][j]} | {s['z'][i][j]:.2f} | {s['p_holm'][i][j]:.2g} | "
                             f"{'yes' if s['significant'][i][j] else 'no'} |")
    if full["probing"]:
        lines += ["", "## Probing (Table IV shape): F1 on probe-test and relative improvement over majority", "",
                  "| model | label | classifier | classes | micro F1 | macro F1 | I micro | I macro |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in full["probing"]:
            lines.append(f"| {r['model']} | {r['label']} | {r['classifier']} | {r['n_classes']} | {r['micro_f1']:.3f} | "
                         f"{r['macro_f1']:.3f} | {r['improvement_micro']:+.2f} | {r['improvement_macro']:+.2f} |")
    if full.get("probing_skipped"):
        lines += ["", "Labels not probed: " + "; ".join(f"{k}: {v}" for k, v in full["probing_skipped"].items())]
    if full.get("sources"):
        src = full["sources"]
        lines += ["", f"## Real notes, source by source ({src['notes']} notes of every source fetched, pooled; "
                      f"{src['draws']} draws; a trial belongs to its enrolled instrument's source)", "",
                  markdown_sources(src)]
    return "\n".join(lines) + "\n"
