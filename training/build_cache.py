"""Build the shipped ``cache/`` from trained checkpoints and the corpus, deterministically.

    python -m training.build_cache [--model mel122=runs/mel122/best --model cqt122=runs/cqt122/best]
                                   [--clean mel122=CLEAN_CHECKPOINT ...]
                                   [--corpus data/corpus] [--out cache] [--no-probing]
                                   [--member cqt122/pairs=CHECKPOINT ... [--members-only]]
                                   [--drop-member cqt122/lmft ...]
                                   [--system NAME=MAIN,MEMBER,... [--systems-only]]

Writes (all of it made by our own code; the shipped cache's budget is in tests/test_cache.py):

* ``models/<name>/model.safetensors`` + ``model.json``: the encoder (training heads
  dropped), model arguments, label maps, corpus recipe, provenance; its scoring back-end
  and corpus-wide instrument centroids (:mod:`mie_core.service.verify`); with ``--clean``, the
  clean-trained partner in ``models/<name>/clean/`` (checkpoint and back-end) and the
  quality-aware fusion of both in ``models/<name>/fusion.json`` (:mod:`mie_core.scoring.fusion`),
  and the partner's test embeddings as ``embeddings/<name>_clean_test.npy`` (the Verify
  page enrols corpus instruments from them).
* ``embeddings/<name>_<part>.npy`` (float16, one row per note) and
  ``embeddings/notes_<part>.parquet`` (the notes' metadata, the rows' order), for the
  parts of :mod:`mie_core.evaluation.parts`: test and valid (clean renders of the program-disjoint
  split's evaluation notes), wet (the test notes through the test rooms' recording chain)
  and real (the fetched real recordings), embedded through the one embedding store
  (:mod:`mie_core.evaluation.embeddings`) with bf16 autocast where the CPU has it (``--precision``;
  recorded as ``precision`` in the results).
* ``maps/<name>_test_<tsne|umap>.npy``: 2-D coordinates of the test embeddings.
* ``results/benchmark.json``: verification on identical trials for every model and
  the MFCC baseline (EER, bootstrap interval, minDCF, threshold at the EER point, DET
  points, per-family EER, significance), and probing results for every label.
* with ``--member MODEL/MEMBER=CHECKPOINT``, a model only the systems use (``models/MODEL/MEMBER/``,
  e.g. ``cqt122/lmft``: checkpoint, back-end and centroids, and its test embeddings as
  ``embeddings/cqt122_lmft_test.npy`` for the Verify page; no maps or results of its own:
  :func:`add_member`); ``--members-only`` adds it to a built cache.
* with ``--system NAME=MAIN,MEMBER,...``, a system fusing several of those models
  (``models/NAME/``: :func:`add_system`); ``--systems-only`` adds it to a built cache.
* ``manifest.json``: every file with its size, sha256 and the command that made it.

The app reads only this folder (and renders notes on demand from the soundfonts).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core.augment import chain
from mie_core.explore import maps, probing
from mie_core.data.corpus import Corpus, default_corpus_dir
from mie_core.evaluation.embeddings import EmbeddingStore, file_sha256, resolve_precision
from mie_core.nnet.checkpoint import load_encoder, save_checkpoint
from mie_core.evaluation.parts import load_parts
from mie_core.scoring.fusion import PARTNER_DIR
from mie_core.evaluation.report import json_default, score_part
from mie_core.scoring.fitting import BACKEND_PARTS, FUSION_PARTS, LDA_PARTS, fit_backends, fit_fusions
from mie_core.evaluation.embeddings import embed_models
from mie_core.service.verify import identification_rates, instrument_centroids

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("mel122=runs/mel122/best", "cqt122=runs/cqt122/best")
META_COLUMNS = ["note_str", "instrument_str", "instrument_family_str", "instrument_source_str", "playing_style",
                "pitch", "velocity", "soundfont", "bank", "program", "preset_name", "gain_db"]
SPLIT = "program_disjoint"
# parts whose embeddings the app reads (the wet part's results are shipped, its 7 MB per model of embeddings not)
SHIPPED_EMBEDDINGS = ("test", "valid", "real")
SEED = 0


def write_manifest(out: Path, command: str) -> dict:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            files[str(p.relative_to(out))] = {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
    manifest = {"command": command, "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "total_bytes": sum(f["bytes"] for f in files.values()), "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def write_centroids(folder: Path, centroids: np.ndarray, info: pd.DataFrame) -> None:
    """A model's or system's instrument centroids (float16, one row per corpus instrument) and
    the instruments they stand for (``instruments.json``), as the loader reads them."""
    np.save(folder / "centroids.npy", centroids.astype(np.float16))
    (folder / "instruments.json").write_text(
        json.dumps(info.astype({"program": int, "bank": int, "gain_db": float}).to_dict(orient="records")))


def add_weights_hashes(out: Path) -> int:
    """Write ``weights_sha256`` into every model.json of ``out/models`` that lacks it (the
    weights untouched: the same embeddings, the same library folders), then the manifest."""
    import hashlib

    from mie_core.fileio import atomic_write_text

    changed = []
    for meta_path in sorted((out / "models").rglob("model.json")):
        meta = json.loads(meta_path.read_text())
        digest = hashlib.sha256((meta_path.parent / "model.safetensors").read_bytes()).hexdigest()
        if meta.get("weights_sha256") != digest:
            meta["weights_sha256"] = digest
            atomic_write_text(meta_path, json.dumps(meta, indent=1))
            changed.append(str(meta_path.relative_to(out)))
    if changed:
        rewrite_manifest(out, "--weights-hashes-only")
    print(f"weights_sha256 recorded in {len(changed)} model.json file(s): {', '.join(changed) or 'none needed'}")
    return 0


REAL_CALIBRATED = ("mel+cqt", "cqt122", "mel122")


def add_real_calibrations(out: Path, precision: str = "auto", n_draws: int | None = None, seed: int = 0,
                          corpus_dir=None) -> int:
    """Each shipped system's calibration on real notes (:class:`mie_core.service.verify.RealCalibration`):
    a fused system's weights refitted on every real trial of every source (a model alone: ``a
    llr + b``), with its EER and verdict rates on each source when fitted without that source
    (:func:`mie_core.evaluation.report.source_results`); for a fused system also the
    recording-condition model and the automatic choice's figures (on each source held out,
    and on the clean test and wet parts), from the corpus's ``valid``, ``calib``, ``test`` and
    ``wet`` parts; and the test notes' recording features (``embeddings/recording_test.npy``),
    which the condition model reads when the Verify page enrols a corpus instrument.
    ``n_draws``: the trial draws behind the figures (default
    :data:`mie_core.evaluation.report.REAL_DRAWS`)."""
    from mie_core.evaluation.report import REAL_DRAWS, source_results
    from mie_core.scoring.condition import ConditionModel
    from mie_core.fileio import atomic_save_npy
    from mie_core.service.verify import RealCalibration
    from mie_core.service.workbench import recording_file

    n_draws = n_draws or REAL_DRAWS
    parts = load_parts(Corpus.load(corpus_dir or default_corpus_dir()), ("valid", "calib", "test", "wet"), SPLIT)
    store = EmbeddingStore()
    res = source_results({name: out / "models" / name for name in REAL_CALIBRATED}, store, precision,
                         seed, n_draws, log=print, condition_parts=(parts["valid"], parts["calib"]),
                         render_parts={"test": parts["test"], "wet": parts["wet"]})
    if res is None:
        raise SystemExit("--real-calibration-only: no real recordings here (python -m mie_core fetch)")
    # the Verify page's corpus enrolments: the test notes' recording features, as the condition model reads them
    atomic_save_npy(out / "embeddings" / recording_file("test"),
                    store.recording(parts["test"].key, parts["test"].audio))
    fitted_on = {"sources": sorted(res["instruments"]), "instruments": res["instrument_names"], "notes": res["notes"],
                 "trials": res["trials"], "draws": n_draws, "seed": seed, "prior": 0.5,
                 "precision": resolve_precision(precision)}
    for name, rec in res["systems"].items():
        fit = rec["fit"]
        held = rec["fusion"] if fit["kind"] == "fusion" else rec["loso"]
        cond = ConditionModel.from_dict(rec["condition"]) if "condition" in rec else None
        RealCalibration(fit["kind"], tuple(fit["weights"]), float(fit["offset"]), held, rec["before"],
                        fitted_on, cond, rec.get("auto"), rec.get("renders"),
                        float(rec.get("auto_margin", 0.0))).save(out / "models" / name)
        print(f"{name}: {fit['kind']} fitted on real notes; held out, pooled: genuine accepted "
              f"{100 * held['pooled']['genuine_accepted']:.1f} %, impostors rejected "
              f"{100 * held['pooled']['impostors_rejected']:.1f} %")
    rewrite_manifest(out, step_with_precision("--real-calibration-only", precision)
                     + ("" if n_draws == REAL_DRAWS else f" --real-draws {n_draws}"))
    return 0


def rewrite_manifest(out: Path, step: str, made_by: str | None = None) -> dict:
    """The manifest of a built cache that a later ``build_cache STEP`` changed: its files
    hashed again, the step added to the command that made them, in the order run, unless the
    command's last step is it already (a step run twice in a row) or, with ``made_by``, holds
    ``made_by`` (a full build's ``--system`` and ``--member`` make systems and members too)."""
    old = json.loads((out / "manifest.json").read_text())["command"]
    last = old.split("; then python -m training.build_cache ")[-1]
    done = (made_by in last) if made_by else last == step
    return write_manifest(out, old if done else f"{old}; then python -m training.build_cache {step}")


def step_with_precision(step: str, precision: str) -> str:
    """A step as the manifest records it: with ``--precision`` where one was asked for.

    >>> step_with_precision("--pitch-gaps-only", "auto"), step_with_precision("--pitch-gaps-only", "fp32")
    ('--pitch-gaps-only', '--pitch-gaps-only --precision fp32')
    """
    return step if precision == "auto" else f"{step} --precision {precision}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.build_cache", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", help="NAME=CHECKPOINT (repeatable)")
    p.add_argument("--clean", action="append", default=[],
                   help="NAME=CHECKPOINT: a clean-trained partner fused with model NAME (repeatable; mie_core.scoring.fusion)")
    p.add_argument("--corpus", default=None)
    p.add_argument("--out", default=str(REPO / "cache"))
    p.add_argument("--no-probing", action="store_true")
    p.add_argument("--draws", type=int, default=5, help="trial draws of the parts' figures")
    p.add_argument("--real-draws", type=int, default=None,
                   help="with --real-calibration-only: trial draws of the real figures (default 20, "
                        "mie_core.evaluation.report.REAL_DRAWS)")
    p.add_argument("--parts", default="test,valid,wet,real",
                   help="evaluation parts to embed and score (test and valid are needed by the app)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="embedding precision (auto: bf16 autocast where the CPU has native bf16; a member or system "
                        "added to a built cache: the cache's own)")
    p.add_argument("--lda-dims", type=int, default=0,
                   help="fit the back-end's multi-condition LDA with this many dimensions (0: none, as shipped)")
    p.add_argument("--probing-only", action="store_true",
                   help="add the probing results to an existing cache from its embeddings (one process per model)")
    p.add_argument("--system", action="append", default=[], metavar="NAME=MAIN,MEMBER,...",
                   help="a system fusing several of the cache's models (folders under models/, e.g. "
                        "mel+cqt=cqt122,cqt122/clean,mel122,mel122/clean; the first is the one shown on maps): "
                        "fitted after the models (repeatable; mie_core.scoring.fusion)")
    p.add_argument("--member", action="append", default=[], metavar="MODEL/MEMBER=CHECKPOINT",
                   help="a model only the systems use, saved as models/NAME with its back-end and centroids "
                        "(NAME is MODEL/MEMBER, inside a model's folder: cqt122/lmft); added before the systems (repeatable)")
    p.add_argument("--drop-member", action="append", default=[], metavar="MODEL/MEMBER",
                   help="take a member no system fuses any more out of a built cache (repeatable)")
    p.add_argument("--members-only", action="store_true",
                   help="add the --member(s) to an existing cache without rebuilding it")
    p.add_argument("--systems-only", action="store_true",
                   help="add the --system(s) to an existing cache without rebuilding it")
    p.add_argument("--system-parts", default=None, metavar="PART,...",
                   help="with --systems-only: score the systems on these of the cache's parts alone (an experiment's "
                        "copy of the cache, e.g. real first on a slow CPU)")
    p.add_argument("--pitch-gaps-only", action="store_true",
                   help="add results/pitch_gaps.json (verdicts on the real part by pitch distance) to a built cache")
    p.add_argument("--weights-hashes-only", action="store_true",
                   help="record each shipped model's weights_sha256 in its model.json (checked on every load) "
                        "in a cache built before the loader checked it")
    p.add_argument("--real-calibration-only", action="store_true",
                   help="fit each shipped system's calibration on the real notes of every source (real_calibration.json), "
                        "with its figures on each source held out")
    args = p.parse_args(argv)
    if args.real_calibration_only:
        return add_real_calibrations(Path(args.out), args.precision, args.real_draws, corpus_dir=args.corpus)
    if args.weights_hashes_only:
        return add_weights_hashes(Path(args.out))
    if args.drop_member:
        for name in args.drop_member:
            drop_member(Path(args.out), name)
        return 0
    systems = [parse_system(spec, p) for spec in args.system]
    models = [m.split("=", 1) for m in (args.model or DEFAULT_MODELS)]
    partners = dict(c.split("=", 1) for c in args.clean)
    unknown = sorted(set(partners) - {n for n, _ in models})
    if unknown:
        p.error(f"--clean names no --model: {', '.join(unknown)}")
    extra_members = [parse_member(spec, p) for spec in args.member]
    out = Path(args.out)
    if args.members_only:
        if not extra_members:
            p.error("--members-only needs one or more --member MODEL/MEMBER=CHECKPOINT")
        for name, path in extra_members:
            add_member(out, name, path, args.corpus, args.precision)
        return 0
    if args.probing_only:
        return add_probing(out, [n for n, _ in models])
    only_parts = tuple(x.strip() for x in args.system_parts.split(",") if x.strip()) if args.system_parts else None
    if only_parts is not None and not args.systems_only:
        p.error("--system-parts goes with --systems-only (an experiment's copy of the cache)")
    if args.systems_only:
        for name, members in systems:
            add_system(out, name, members, args.corpus, args.precision, only_parts)
        return 0
    if args.pitch_gaps_only:
        add_pitch_gaps(out, args.corpus, args.precision)
        return 0
    corpus = Corpus.load(args.corpus or default_corpus_dir())
    tmp = out.with_name(out.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    for sub in ("models", "embeddings", "maps", "results"):
        (tmp / sub).mkdir(parents=True)
    # the shipped room bank (it cannot be rebuilt: mie_core.augment.chain.SHIPPED_ROOMS) goes with the cache
    if chain.SHIPPED_ROOMS.is_dir():
        shutil.copytree(chain.SHIPPED_ROOMS, tmp / "rooms")

    # bf16 autocast where the CPU has it natively (3x faster on 4-s notes); recorded in the
    # results so the app embeds uploads the same way
    precision = resolve_precision(args.precision)
    parts = load_parts(corpus, tuple(p for p in args.parts.split(",") if p), SPLIT)
    for name, part in parts.items():
        part.rows[[c for c in META_COLUMNS if c in part.rows]].to_parquet(
            tmp / "embeddings" / f"notes_{name}.parquet", index=False)
    store = EmbeddingStore()
    named = dict(models)
    for folder, path in [(tmp / "models" / n, p_) for n, p_ in named.items()] + \
            [(tmp / "models" / n / PARTNER_DIR, p_) for n, p_ in partners.items()]:
        enc = load_encoder(path)
        save_checkpoint(folder, enc, None, enc.label_maps, enc.metadata.get("provenance"), enc.metadata.get("metrics"))
    emb: dict[str, dict[str, np.ndarray]] = {name: {} for name in named}
    for pname, part in parts.items():
        t0 = time.monotonic()
        # through the one embedding store (data/embeddings): a rebuild, the evaluate command
        # and the app all read what was embedded once
        e = embed_models(named, part, store, precision, log=say)
        for name in named:
            emb[name][pname] = e[name]
            if pname in SHIPPED_EMBEDDINGS:
                np.save(tmp / "embeddings" / f"{name}_{pname}.npy", e[name].astype(np.float16))
        if partners:
            e = embed_models(partners, part, store, precision, log=say)
            for name in partners:
                emb[name][f"{pname}:clean"] = e[name]
            if pname == "test":  # the Verify page enrols corpus instruments with both models
                for name in partners:
                    np.save(tmp / "embeddings" / f"{name}_clean_{pname}.npy", e[name].astype(np.float16))
        say(f"{pname}: {len(part.rows)} notes embedded by {len(named)} models in {time.monotonic() - t0:.0f} s")
    # the scoring back-end of each model (mean, cohort, calibration: mie_core.scoring.backend) and the
    # centroids of every corpus instrument (for identification), from the bank, valid and
    # calib parts; nothing of the test instruments or rooms
    aux_names = BACKEND_PARTS + (LDA_PARTS if args.lda_dims else ()) + (FUSION_PARTS if partners else ())
    aux = load_parts(corpus, tuple(dict.fromkeys(aux_names)), SPLIT)
    backends, bank_emb = fit_backends(named, aux, store, precision, SEED, log=say, lda_dims=args.lda_dims or None)
    fusions, partner_be = {}, {}
    if partners:  # each clean partner's own back-end, then the fusion (nothing of the test instruments or rooms)
        partner_be, _ = fit_backends(partners, aux, store, precision, SEED, log=say, lda_dims=args.lda_dims or None)
        fusions = fit_fusions({n: (named[n], partners[n]) for n in partners}, aux, backends, partner_be, store,
                              precision, SEED, log=say)
        for name, qf in fusions.items():
            partner_be[name].info["precision"] = precision
            partner_be[name].save(tmp / "models" / name / PARTNER_DIR)
            qf.save(tmp / "models" / name)
            say(f"{name}: fused with its clean partner ({qf.info['fusion_trials']} held-out trials)")
    centroids = {}
    for name, be in backends.items():
        be.info["precision"] = precision
        be.save(tmp / "models" / name)
        cents, info = instrument_centroids(be, bank_emb[name], aux["bank"].rows)
        centroids[name] = (cents, info)
        write_centroids(tmp / "models" / name, cents, info)
        say(f"{name}: back-end calibrated on {be.info['n_calibration_trials']} held-out trials, "
            f"{len(info)} instrument centroids")
    # the training logs of the shipped models (small), for the Training runs page of a fresh clone
    for name, path in named.items():
        log = Path(path).parent / "log.jsonl"
        if log.exists():
            (tmp / "logs").mkdir(exist_ok=True)
            shutil.copyfile(log, tmp / "logs" / f"{name}.jsonl")
    for name in named:
        for method in ("tsne", "umap"):
            t0 = time.monotonic()
            m = maps.fit_map(emb[name]["test"], method, seed=SEED)
            np.save(tmp / "maps" / f"{name}_test_{method}.npy", m.coords.astype(np.float32))
            say(f"{name}: {method} map in {time.monotonic() - t0:.0f} s")

    results = {"split": SPLIT, "seed": SEED, "embed_bf16": precision == "bf16", "precision": precision, "parts": {}}
    test_rows = parts["test"].rows
    for pname, part in parts.items():
        fused = {n: (partner_be[n], emb[n][f"{pname}:clean"], fusions[n]) for n in fusions}
        res = score_part({name: emb[name][pname] for name in named}, part, SEED, args.draws, backends=backends,
                         fusions=fused)
        res.pop("_trials")
        res.pop("_scores")
        if pname == "real":  # no real instrument is in the corpus: identification is a fair test here
            for name in named:
                res["models"][name]["identify"] = identification_rates(backends[name].vectors(emb[name][pname]),
                                                                       *centroids[name], part.rows)
        results["parts"][pname] = res
        say(f"{pname}: " + ", ".join(f"{n} EER {100 * m['eer']:.2f} %" for n, m in res["models"].items()))
    if not args.no_probing:
        results["probing"], results["probing_skipped"] = [], {}
        for name, _ in models:
            rs, skipped = probe_model(emb[name]["test"], test_rows, name)
            results["probing"] += rs
            results["probing_skipped"].update(skipped)
    results["models"] = {name: load_encoder(tmp / "models" / name).metadata for name, _ in models}
    (tmp / "results" / "benchmark.json").write_text(json.dumps(results, indent=1, default=json_default))
    cmd = "python -m training.build_cache " + " ".join(f"--model {n}={p}" for n, p in models) + \
        "".join(f" --clean {n}={p}" for n, p in partners.items()) + \
        "".join(f" --member {n}={p}" for n, p in extra_members) + \
        "".join(f" --system {n}={','.join(m)}" for n, m in systems) + \
        f" --precision {precision} --parts {','.join(parts)}" + (" --no-probing" if args.no_probing else "")
    manifest = write_manifest(tmp, cmd)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    say(f"wrote {out}: {len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB")
    for name, path in extra_members:
        add_member(out, name, path, args.corpus, precision, made_by=f"--member {name}={path}")
    for name, members in systems:
        add_system(out, name, members, args.corpus, precision)
    if "real" in parts:
        add_pitch_gaps(out, args.corpus, precision)
    return 0


def add_pitch_gaps(out: Path, corpus_dir=None, precision: str = "auto") -> None:
    """``results/pitch_gaps.json``: how often the Verify page's verdict (prior 50 %, each
    model's calibration as shipped) was right on the real part, by the pitch distance from a
    test note to the nearest of its enrolment notes (:func:`mie_core.data.pitch.rates_by_gap`), for
    every calibrated model and system of the cache, on the trials of ``benchmark.json``'s real
    part. Pitches are estimated from the audio (:func:`mie_core.data.pitch.note_midi`), as the page
    estimates an upload's, not read from the file names. The manifest is rewritten."""
    from mie_core.data import pitch
    from mie_core.evaluation import protocol
    from mie_core.service.verify import load_verifier, verify

    results = json.loads((Path(out) / "results" / "benchmark.json").read_text())
    if "real" not in results.get("parts", {}):
        raise SystemExit("--pitch-gaps-only: the cache has no results on the real part (python -m mie_core fetch, "
                         "then build the cache)")
    asked, precision = precision, resolve_precision(precision)  # this CPU's (the verdicts move in low bits only: cross_cpu.py)
    parts = load_parts(Corpus.load(corpus_dir or default_corpus_dir()), ("real",), SPLIT)
    if "real" not in parts:
        raise SystemExit("--pitch-gaps-only: the real recordings are not here (python -m mie_core fetch)")
    part, real = parts["real"], results["parts"]["real"]
    say(f"estimating the pitch of {len(part.rows)} real notes")
    midi = np.array([pitch.note_midi(x) for x in part.audio()])
    draws = protocol.protocol_draws(part.rows["instrument_str"].to_numpy(), results.get("seed", SEED),
                                      real.get("n_draws", 5))
    store = EmbeddingStore()
    record = {"part": "real", "pitch": "estimated from the audio (mie_core.data.pitch.note_midi, YIN)",
              "n_notes": int(len(midi)), "n_without_pitch": int(np.isnan(midi).sum()),
              "within_a_semitone_of_label": float(np.mean(np.abs(midi - part.rows["pitch"].to_numpy()) < 1.0)),
              "n_draws": len(draws), "prior": 0.5, "precision": precision, "models": {}}
    for folder in sorted(p_ for p_ in (Path(out) / "models").iterdir() if p_.is_dir()):
        ver = load_verifier(folder, precision)
        if not ver.can_calibrate:
            continue
        emb = ver.join(*[embed_models({str(m): m}, part, store, precision, log=say)[str(m)] for m in ver.member_paths])
        gaps, target, accept = [], [], []
        for tr in draws:
            for m, enrol in enumerate(tr.enroll):
                k = np.flatnonzero(tr.model == m)
                v = verify(ver, emb[enrol], emb[tr.test[k]])
                gaps.append(pitch.pitch_gaps(midi[tr.test[k]], midi[enrol]))
                target.append(tr.target[k])
                accept.append(v["accept"].to_numpy(dtype=bool))
        gaps, target, accept = (np.concatenate(a) for a in (gaps, target, accept))
        rows = pitch.rates_by_gap(gaps, target, accept)
        record["models"][folder.name] = {"bins": rows, "genuine_accepted": float(accept[target].mean()),
                                         "impostors_rejected": float(1 - accept[~target].mean())}
        say(f"{folder.name}: genuine accepted by pitch gap " +
            ", ".join(f"{r['gap']}: {100 * r['genuine_accepted']:.1f} % of {r['n_genuine']}" for r in rows))
    (Path(out) / "results" / "pitch_gaps.json").write_text(json.dumps(record, indent=1, default=json_default))
    rewrite_manifest(Path(out), step_with_precision("--pitch-gaps-only", asked))
    say(f"wrote {Path(out) / 'results' / 'pitch_gaps.json'}")


def parse_system(spec: str, parser=None) -> tuple[str, list[str]]:
    """``NAME=MAIN,MEMBER,...`` -> (name, members, the main one first)."""
    name, _, rest = spec.partition("=")
    members = [m.strip().strip("/") for m in rest.split(",") if m.strip()]
    if not name or "/" in name or len(members) < 2 or len(set(members)) != len(members):
        msg = f"--system {spec!r}: give NAME=MAIN,MEMBER,... with two or more distinct model folders"
        if parser is not None:
            parser.error(msg)
        raise ValueError(msg)
    return name, members


def is_member_name(name: str) -> bool:
    """``MODEL/MEMBER``: a folder inside a model's folder, neither hidden nor its clean partner's."""
    parts = name.split("/")
    return len(parts) == 2 and all(x and not x.startswith(".") for x in parts) and parts[1] != PARTNER_DIR


def parse_member(spec: str, parser=None) -> tuple[str, str]:
    """``NAME=CHECKPOINT`` -> (name, checkpoint); NAME is ``MODEL/MEMBER``, a folder inside a
    model's folder (``cqt122/lmft``: the pages list the top-level folders only), not its clean
    partner's (``cqt122/clean``)."""
    name, _, path = spec.partition("=")
    name = name.strip()
    if not path or not is_member_name(name):
        msg = (f"--member {spec!r}: give MODEL/MEMBER=CHECKPOINT, a folder inside a model's folder "
               f"(e.g. cqt122/lmft; not {PARTNER_DIR}, the clean partner's)")
        if parser is not None:
            parser.error(msg)
        raise ValueError(msg)
    return name, path


def add_member(out: Path, name: str, checkpoint: str | Path, corpus_dir=None, precision: str = "auto",
               made_by: str | None = None) -> Path:
    """Add a model that only the cache's systems use as ``models/<name>/``: its encoder (heads
    dropped), scoring back-end and instrument centroids, fitted as :func:`main` fits every
    model's (:func:`mie_core.scoring.fitting.fit_backends`, nothing of the test instruments or
    rooms), and its test embeddings (``embeddings/<name, / as _>_test.npy``: the Verify page
    enrols corpus instruments from them), but no maps or results of its own; name it in a
    ``--system``.
    ``name`` is ``MODEL/MEMBER`` (:func:`parse_member`), inside a model's folder of the cache:
    the pages list the top-level folders only. An existing member is replaced whole. The
    manifest is rewritten."""
    from mie_core.fileio import atomic_save_npy

    results = json.loads((Path(out) / "results" / "benchmark.json").read_text())
    asked, precision = precision, cache_precision(results, precision)
    folder = Path(out) / "models" / name
    if not (folder.parent / "model.json").exists():
        raise SystemExit(f"--member {name}: {folder.parent} is not a model folder of {out}")
    corpus = Corpus.load(corpus_dir or default_corpus_dir())
    test = None
    if (Path(out) / "embeddings" / "notes_test.parquet").exists():
        # the Verify page enrols corpus instruments with every member from the cache's test embeddings
        test = load_parts(corpus, ("test",), SPLIT)["test"]
        shipped = pd.read_parquet(Path(out) / "embeddings" / "notes_test.parquet")["note_str"]
        if test.rows["note_str"].tolist() != shipped.tolist():
            raise SystemExit(f"--member {name}: the corpus's test notes are not the ones {out} was built from")
    tmp = folder.with_name(f".{folder.name}.building")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        enc = load_encoder(checkpoint)
        save_checkpoint(tmp, enc, None, enc.label_maps, enc.metadata.get("provenance"), enc.metadata.get("metrics"))
        aux = load_parts(corpus, BACKEND_PARTS, SPLIT)
        # through the copy that ships, so a system built next reads the same embeddings from the store
        backends, bank_emb = fit_backends({name: tmp}, aux, EmbeddingStore(), precision, SEED, log=say)
        be = backends[name]
        be.info["precision"] = precision
        be.save(tmp)
        cents, info = instrument_centroids(be, bank_emb[name], aux["bank"].rows)
        write_centroids(tmp, cents, info)
        if test is not None:
            e = embed_models({name: tmp}, test, EmbeddingStore(), precision, log=say)[name]
            atomic_save_npy(Path(out) / "embeddings" / f"{name.replace('/', '_')}_test.npy", e.astype(np.float16))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-built is left in the cache's folders
        raise
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)
    rewrite_manifest(Path(out), step_with_precision(f"--members-only --member {name}={checkpoint}", asked),
                     made_by=made_by or f"--member {name}={checkpoint}")
    say(f"{name}: back-end calibrated on {be.info['n_calibration_trials']} held-out trials, {len(info)} centroids; "
        f"a member for the systems of {out}")
    return folder


def drop_member(out: Path, name: str) -> None:
    """Take a member that no system fuses any more out of a built cache: its folder
    ``models/<name>/`` and its test embeddings; the manifest is rewritten (and records the step).
    A member a system still fuses is refused: rebuild the system without it first
    (``--systems-only``). A model's clean partner is part of its model, not a member to drop."""
    from mie_core.service.workbench import find_systems

    out = Path(out)
    folder = out / "models" / name
    if name.split("/")[-1] == PARTNER_DIR:
        raise SystemExit(f"--drop-member {name}: a clean partner belongs to its model; it is not a member to drop")
    if not is_member_name(name) or not (folder / "model.json").exists():
        raise SystemExit(f"--drop-member {name}: {out} has no member {name} (a member is MODEL/MEMBER)")
    users = sorted(e.name for e in find_systems(out) if name in e.system["members"])
    if users:
        raise SystemExit(f"--drop-member {name}: {', '.join(users)} still fuse(s) it; "
                         "rebuild the system without it first (--systems-only)")
    gone = folder.with_name(f".{folder.name}.dropping")
    folder.rename(gone)  # the folder leaves the cache's listing at once, then its files go
    shutil.rmtree(gone)
    (out / "embeddings" / f"{name.replace('/', '_')}_test.npy").unlink(missing_ok=True)
    rewrite_manifest(out, f"--drop-member {name}")
    say(f"{name}: dropped from {out}")


def cache_precision(results: dict, precision: str = "auto") -> str:
    """The precision a member or system added to a built cache embeds at: the cache's own
    (``results/benchmark.json``), so its figures sit beside the shipped ones, unless
    ``precision`` asks for one explicitly (an experiment on a CPU without native bf16, where
    bf16 autocast runs 5-7x slower than fp32: `benchmarks/upload_embedding.py`).

    >>> cache_precision({"precision": "bf16"}), cache_precision({"precision": "bf16"}, "fp32")
    ('bf16', 'fp32')
    """
    if precision != "auto":
        return resolve_precision(precision)
    return results.get("precision") or resolve_precision(precision)


def add_system(out: Path, name: str, members: list[str], corpus_dir=None, precision: str = "auto",
               only_parts: tuple[str, ...] | None = None) -> None:
    """Fit a system of the cache's models (:func:`mie_core.scoring.fitting.fit_system`) and add it to
    the cache: ``models/<name>/fusion.json`` (naming the member folders), its instrument
    centroids over every member (:meth:`mie_core.service.verify.Verifier.identify_vectors`), and its
    results on every part of ``results/benchmark.json`` (``parts.<part>.systems.<name>``: the
    same trials as the models', and identification on the real part). The members'
    back-ends are the shipped ones, untouched; the manifest is rewritten. ``only_parts``: score
    it on these of the cache's parts alone (an experiment's copy; the others keep no figures of it)."""
    from mie_core.evaluation.report import system_results
    from mie_core.scoring.fitting import fit_system
    from mie_core.scoring.backend import Backend

    models = Path(out) / "models"
    paths = {m: models / m for m in members}
    for m, path in paths.items():
        if not (path / "model.json").exists() or not Backend.exists(path):
            raise SystemExit(f"--system {name}: {path} is not a model folder with a back-end in the cache")
    backends = {m: Backend.load(path) for m, path in paths.items()}
    results_path = Path(out) / "results" / "benchmark.json"
    results = json.loads(results_path.read_text())
    asked, precision = precision, cache_precision(results, precision)
    corpus = Corpus.load(corpus_dir or default_corpus_dir())
    evaluated = [p_ for p_ in results["parts"] if p_ != "real" or (Path(out) / "embeddings" / "notes_real.parquet").exists()]
    if only_parts is not None:  # an experiment's copy of the cache: score the system on these parts alone
        unknown = sorted(set(only_parts) - set(evaluated))
        if unknown:
            raise SystemExit(f"--system-parts: {', '.join(unknown)} not among the cache's parts ({', '.join(evaluated)})")
        evaluated = [p_ for p_ in evaluated if p_ in only_parts]
    parts = load_parts(corpus, tuple(dict.fromkeys(FUSION_PARTS + tuple(evaluated))), SPLIT)
    store = EmbeddingStore()
    # the member order (mie_core.scoring.fusion): as given, the main one first
    qf = fit_system(paths, backends, parts, members[0], store, precision, SEED, log=say)
    folder = models / name
    if folder.exists():
        shutil.rmtree(folder)
    qf.save(folder)
    # every corpus instrument in each member's space, in the member order (the main one first,
    # as given), side by side
    bank = embed_models(paths, parts["bank"], store, precision, log=say)
    cents, info = [], None
    for m in members:
        c, info = instrument_centroids(backends[m], bank[m], parts["bank"].rows)
        cents.append(c)
    cents = np.concatenate(cents, axis=1) / np.sqrt(len(cents))
    write_centroids(folder, cents, info)
    for pname in evaluated:  # as evaluate scores a system: its members and fusion as saved
        rec = system_results(folder, parts[pname], store, precision, results.get("seed", SEED),
                             results["parts"][pname].get("n_draws", 5), log=say)
        results["parts"][pname].setdefault("systems", {})[name] = rec
        f = rec["fused"]
        say(f"{name} on {pname}: fused EER {100 * f['eer']:.2f} %, genuine accepted {100 * (1 - f['p_miss']):.1f} %, "
            f"impostors rejected {100 * (1 - f['p_fa']):.1f} %")
    results_path.write_text(json.dumps(results, indent=1, default=json_default))
    spec = f"--system {name}={','.join(members)}"
    rewrite_manifest(Path(out), step_with_precision(f"--systems-only {spec}", asked), made_by=spec)
    say(f"{name}: a system of {len(members)} models added to {out}")


def say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


PROBE_NOTES = 2000  # a seeded subset of the test notes (probing.subsample); None = all


def probe_model(emb: np.ndarray, rows: pd.DataFrame, name: str, max_notes: int | None = PROBE_NOTES) -> tuple[list[dict], dict]:
    """Every probing label and classifier on one model's test embeddings (the same notes for every model)."""
    t0 = time.monotonic()
    idx = probing.subsample(len(rows), max_notes, np.random.default_rng(SEED))
    labels = probing.probe_labels(rows.iloc[idx].reset_index(drop=True))
    rs, skipped = probing.run_probes(emb[idx], labels, SEED)
    say(f"{name}: probing {len(idx)} notes in {time.monotonic() - t0:.0f} s")
    return [{"model": name, "n_notes": int(len(idx)), **x.as_dict()} for x in rs], skipped


def _probe_from_cache(args: tuple[str, str]) -> tuple[list[dict], dict]:
    root, name = args
    emb = np.load(Path(root) / "embeddings" / f"{name}_test.npy").astype(np.float32)
    return probe_model(emb, pd.read_parquet(Path(root) / "embeddings" / "notes_test.parquet"), name)


def add_probing(out: Path, names: list[str]) -> int:
    """--probing-only: probe each model in its own process and update the results and manifest."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    path = out / "results" / "benchmark.json"
    results = json.loads(path.read_text())
    with ProcessPoolExecutor(max_workers=len(names), mp_context=mp.get_context("spawn")) as pool:
        done = list(pool.map(_probe_from_cache, [(str(out), n) for n in names]))
    results["probing"] = [r for rs, _ in done for r in rs]
    results["probing_skipped"] = {k: v for _, sk in done for k, v in sk.items()}
    path.write_text(json.dumps(results, indent=1, default=json_default))
    old = json.loads((out / "manifest.json").read_text())["command"]
    write_manifest(out, old.replace(" --no-probing", "") + " (probing added by --probing-only)")
    say(f"probing results of {', '.join(names)} added to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
