"""Training data: notes rendered into memory once, clips made on the fly.

The training notes (int16, 128 kB per 4-s note) are rendered with every core at the
start of a run; each training clip is then made from memory by :class:`ClipSampler`:

* with probability ``1 - concat_prob`` a plain note: a crop of ``crop_s`` seconds
  placed uniformly inside the note's non-silent region (with ``crop_min_s`` > 0, each
  batch's crop length drawn uniformly from ``crop_min_s``..``crop_s``);
* otherwise the paper's augmentation: trimmed notes of the same instrument are
  concatenated up to a segment of ``concat_min_s``..``concat_max_s`` s
  (:func:`mie_core.augment.concat.concat_notes`) and a ``crop_s`` crop is taken from it;
* then, where the config enables it, the recording chain (:mod:`mie_core.augment.chain`: room,
  microphone, noise, level, codec, timing) over the whole batch.

With ``data.performed_share`` > 0 that share of the training notes is rendered as a
musician plays (:func:`performed_specs`): note lengths 0.2-3 s with natural releases,
vibrato, pitch drift, swells and decays.

With ``crop_s = 0`` clips are whole segments (plain notes are 4 s; concatenations are
cut to 4 s so a batch is one tensor). Every choice comes from the sampler's
``numpy.random.Generator``, whose state is saved in the checkpoint.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from mie_core.augment import concat
from mie_core.data import render
from mie_core.data.audio import trim_bounds
from mie_core.data.corpus import Corpus, default_corpus_dir, select_notes
from mie_core.data.gm import FAMILIES

SR = 16000


@dataclass
class NoteSet:
    """Notes in memory with their labels."""

    audio: np.ndarray  # (n, samples) int16
    table: pd.DataFrame  # one row per note
    instrument: np.ndarray  # (n,) int label index
    family: np.ndarray  # (n,) int family index
    instruments: list[str]  # label map: index -> instrument_str
    families: list[str]
    pitch: np.ndarray | None = None  # (n,) MIDI pitch of each note, -1 where unknown


_FORKED: dict = {}  # what forked _bounds workers read: the notes, shared copy-on-write


def _bounds_range(audio: np.ndarray, top_db: float, start: int, stop: int) -> np.ndarray:
    out = np.zeros((stop - start, 2), dtype=np.int64)
    for i in range(start, stop):
        out[i - start] = trim_bounds(audio[i].astype(np.float32) / 32768.0, SR, top_db)
    return out


def _bounds_chunk(start: int, stop: int) -> np.ndarray:
    return _bounds_range(_FORKED["audio"], _FORKED["top_db"], start, stop)


def _bounds(audio: np.ndarray, top_db: float, workers: int | None = None) -> np.ndarray:
    """(n, 2) sample bounds of each note's non-silent region; over several processes when
    there are many notes (0.5 ms a note: 45 s for a GPU run's 90,000 on one core)."""
    n = audio.shape[0]
    workers = min(os.cpu_count() or 1, 16) if workers is None else workers
    if workers <= 1 or n < 4096:
        return _bounds_range(audio, top_db, 0, n)
    import multiprocessing as mp

    edges = np.linspace(0, n, 4 * workers + 1).astype(int)
    _FORKED.update(audio=audio, top_db=top_db)
    try:
        with mp.get_context("fork").Pool(workers) as pool:
            parts = pool.starmap(_bounds_chunk, zip(edges[:-1], edges[1:]))
    finally:
        _FORKED.clear()
    return np.concatenate(parts)


def load_corpus_sets(cfg, progress=None, log=None) -> tuple[NoteSet, NoteSet, dict]:
    """(train, valid, recipe) from our SoundFont corpus as the data config says."""
    d = cfg.data
    corpus = Corpus.load(d.corpus or default_corpus_dir())
    train_rows = select_notes(corpus.split_notes(d.split, "train"), pitch_step=d.train_pitch_step,
                              pitch_offset=d.train_pitch_offset, velocities=d.train_velocities,
                              max_per_instrument=d.train_max_notes_per_instrument or None, seed=cfg.run.seed)
    valid_rows = select_notes(corpus.split_notes(d.split, "valid"), pitch_step=d.valid_pitch_step,
                              pitch_offset=d.valid_pitch_offset, velocities=d.valid_velocities,
                              max_per_instrument=d.valid_max_notes_per_instrument or None, seed=cfg.run.eval_seed)
    if log:
        log(f"rendering {len(train_rows)} training and {len(valid_rows)} validation notes into memory")
    workers = d.render_workers or None
    if d.performed_share > 0:
        train_audio = render.render_many(performed_specs(corpus.specs(train_rows), d, cfg.run.seed),
                                         workers=workers, progress=progress)
    else:
        train_audio = corpus.render(train_rows, workers=workers, progress=progress)
    valid_audio = corpus.render(valid_rows, workers=workers)
    instruments = sorted(train_rows["instrument_str"].unique())
    recipe = {
        "kind": "soundfont-corpus",
        "corpus": str(Path(corpus.root).resolve()),
        "fingerprint": corpus.fingerprint,
        "split": d.split,
        "soundfonts": {k: v["sha256"] for k, v in corpus.recipe["soundfonts"].items()},
        "n_train_notes": int(len(train_rows)),
        "n_valid_notes": int(len(valid_rows)),
        "performed_share": d.performed_share,
    }
    return (_noteset(train_audio, train_rows, instruments), _noteset(valid_audio, valid_rows, None), recipe)


def performed_specs(specs: list, d, seed: int) -> list:
    """``specs`` with a share ``d.performed_share`` of them played as a musician would
    (:func:`mie_core.data.render.draw_performance`: short notes, vibrato, drift, swells), the
    choice and every performance drawn from ``seed``."""
    rng = np.random.default_rng([seed, 7919])
    pick = rng.random(len(specs)) < d.performed_share
    return [replace(s, performance=render.draw_performance(rng, held_s=d.performed_held_s)) if p else s
            for s, p in zip(specs, pick)]


def load_nsynth_sets(cfg, progress=None, log=None) -> tuple[NoteSet, NoteSet, dict]:
    """(train, valid, recipe) from NSynth split folders (audio read into memory)."""
    from mie_core.data.nsynth import load_nsynth, read_notes

    d = cfg.data
    tr = load_nsynth(d.nsynth_train)
    va = load_nsynth(d.nsynth_valid)
    tr_rows = select_notes(tr.notes, pitch_step=d.train_pitch_step, pitch_offset=d.train_pitch_offset,
                           velocities=d.train_velocities,
                           max_per_instrument=d.train_max_notes_per_instrument or None, seed=cfg.run.seed)
    va_rows = select_notes(va.notes, pitch_step=d.valid_pitch_step, pitch_offset=d.valid_pitch_offset,
                           velocities=d.valid_velocities,
                           max_per_instrument=d.valid_max_notes_per_instrument or None, seed=cfg.run.eval_seed)
    if log:
        log(f"reading {len(tr_rows)} training and {len(va_rows)} validation NSynth notes")
    instruments = sorted(tr_rows["instrument_str"].unique())
    recipe = {"kind": "nsynth", "train": str(Path(d.nsynth_train).resolve()), "valid": str(Path(d.nsynth_valid).resolve()),
              "n_train_notes": int(len(tr_rows)), "n_valid_notes": int(len(va_rows))}
    return (_noteset(read_notes(tr, tr_rows, progress=progress), tr_rows, instruments),
            _noteset(read_notes(va, va_rows), va_rows, None), recipe)


def load_rwc_sets(cfg, progress=None, log=None) -> tuple[NoteSet, NoteSet, dict]:
    """(train, valid, recipe) from RWC-MDB-I performances: notes cut at onsets, each
    placed at the start of a 4-s clip (cut or zero-padded), the variation split."""
    from mie_core.data.rwc import load_rwc_notes, variation_split

    d = cfg.data
    table, notes = load_rwc_notes(d.rwc_root, progress=progress)
    if table.empty:
        raise ValueError(f"no RWC file (NNVCCSSD.WAV) under {d.rwc_root}")
    split = variation_split(table, seed=cfg.run.seed)
    audio = np.zeros((len(notes), 64000), dtype=np.int16)
    for i, x in enumerate(notes):
        n = min(64000, len(x))
        audio[i, :n] = np.rint(np.clip(x[:n], -1.0, 32767 / 32768) * 32768).astype(np.int16)
    tr = table["instrument_str"].isin(split["train"]).to_numpy()
    va = table["instrument_str"].isin(split["valid"]).to_numpy()
    if log:
        log(f"RWC: {tr.sum()} training and {va.sum()} validation notes")
    instruments = sorted(table.loc[tr, "instrument_str"].unique())
    recipe = {"kind": "rwc", "root": str(Path(d.rwc_root).resolve()), "split": split,
              "n_train_notes": int(tr.sum()), "n_valid_notes": int(va.sum())}
    return (_noteset(audio[tr], table[tr], instruments), _noteset(audio[va], table[va], None), recipe)


def _noteset(audio: np.ndarray, rows: pd.DataFrame, instruments: list[str] | None) -> NoteSet:
    rows = rows.reset_index(drop=True)
    inst_list = instruments if instruments is not None else sorted(rows["instrument_str"].unique())
    pos = {s: i for i, s in enumerate(inst_list)}
    # NSynth's 11 families, then any other family the data names (RWC's "unknown")
    families = list(FAMILIES) + sorted(set(rows["instrument_family_str"]) - set(FAMILIES))
    fam = np.asarray([families.index(f) for f in rows["instrument_family_str"]], dtype=np.int64)
    inst = np.asarray([pos[s] for s in rows["instrument_str"]], dtype=np.int64)
    pitch = (rows["pitch"].fillna(-1).to_numpy(np.int64) if "pitch" in rows else np.full(len(rows), -1, np.int64))
    return NoteSet(audio, rows, inst, fam, list(inst_list), families, np.where((pitch >= 0) & (pitch < 128), pitch, -1))


def sibling_instruments(notes: NoteSet, by: str = "program") -> list[np.ndarray]:
    """For each instrument of ``notes`` (its index), the other instruments of its kind: by
    ``"program"``, those that share its General MIDI bank and program (``rows["bank"]``,
    ``rows["program"]``: the same preset in another SoundFont), or its family where the notes
    carry no program; by ``"family"``, those of its family.

    >>> rows = pd.DataFrame({"instrument_str": ["a", "b", "c", "d"], "bank": 0, "program": [0, 0, 40, 0]})
    >>> ns = NoteSet(None, rows, np.arange(4), np.zeros(4, np.int64), ["a", "b", "c", "d"], ["keyboard"], None)
    >>> [s.tolist() for s in sibling_instruments(ns)]
    [[1, 3], [0, 3], [], [0, 1]]
    >>> [s.tolist() for s in sibling_instruments(ns, "family")]  # one family: all the others
    [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    """
    if by not in ("program", "family"):
        raise ValueError(f"siblings are by program or family, not {by!r}")
    rows = notes.table.reset_index(drop=True)
    if by == "program" and {"bank", "program"} <= set(rows.columns) and rows["program"].notna().all():
        key = rows["bank"].astype(int).astype(str) + ":" + rows["program"].astype(int).astype(str)
    else:
        key = pd.Series(np.asarray(notes.family)).astype(str)
    kind_of = pd.Series(key.to_numpy()).groupby(np.asarray(notes.instrument)).first()  # instrument -> its kind
    kinds = np.array([kind_of.get(i, f"none{i}") for i in range(len(notes.instruments))], dtype=object)
    return [np.flatnonzero((kinds == kinds[i]) & (np.arange(len(kinds)) != i)) for i in range(len(kinds))]


class ClipSampler:
    """Makes training batches from notes in memory (see the module docstring)."""

    def __init__(self, notes: NoteSet, crop_s: float = 1.0, augment_on: bool = True, concat_prob: float = 0.5,
                 concat_min_s: float = 3.0, concat_max_s: float = 5.0, trim_top_db: float = 40.0, seed: int = 0,
                 chain=None, chain_share: float = 1.0, keep_clean: bool = False, keep_pitch: bool = False,
                 crop_min_s: float = 0.0, pair_count: int = 0, pair_min_semitones: int = 12,
                 pair_siblings: str | None = None):
        self.notes = notes
        # register pairs (training.pairs): the batch's first 2 * pair_count clips, two single notes
        # of one instrument at least pair_min_semitones apart (only then: other batches are unchanged)
        self.pair_count = int(pair_count)
        self.pair_min = int(pair_min_semitones)
        self.keep_clean = bool(keep_clean)  # batch() also returns the clips as they were before the chain
        self.keep_pitch = bool(keep_pitch)  # batch() also returns each clip's MIDI pitch (-1: several notes)
        self.chain = chain  # a mie_core.augment.chain.RecordingChain, or None
        self.chain_share = float(chain_share)  # the share of clips that go through it (the rest stay clean)
        self.crop = int(round(crop_s * SR)) if crop_s > 0 else notes.audio.shape[1]
        self.crop_max = self.crop
        # variable duration: each batch draws its length (only then: fixed-crop batches are unchanged)
        self.crop_min = int(round(crop_min_s * SR)) if crop_min_s > 0 and crop_s > 0 else 0
        self.augment = augment_on
        self.concat_prob = concat_prob if augment_on else 0.0
        self.concat_min = int(round(concat_min_s * SR))
        self.concat_max = int(round(concat_max_s * SR))
        self.bounds = _bounds(notes.audio, trim_top_db)
        self.by_instrument = [np.flatnonzero(notes.instrument == i) for i in range(len(notes.instruments))]
        # sibling pairs: each instrument's others of its kind ("program" or "family": sibling_instruments)
        self.siblings = sibling_instruments(notes, pair_siblings) if pair_siblings else None
        self.rng = np.random.default_rng(seed)

    def _trimmed(self, i: int) -> np.ndarray:
        a, b = self.bounds[i]
        if b <= a:
            return self.notes.audio[i]
        return self.notes.audio[i, a:b]

    def _note_clip(self, i: int) -> np.ndarray:
        a, b = self.bounds[i]
        return concat.random_crop(self.notes.audio[i], self.crop, self.rng, lo=int(a), hi=int(max(b, a + 1)))

    def pair(self, instrument: int | None = None) -> tuple[int, int]:
        """Two notes (indices) of one instrument for a register pair: the first drawn as
        :meth:`clip` draws a note (of ``instrument`` where given), the second among the
        instrument's notes at least ``pair_min_semitones`` from it (the farthest in pitch where
        none is, another note where pitches are unknown, the same note where the instrument has
        one)."""
        rng = self.rng
        if instrument is None:
            i = int(rng.integers(len(self.notes.instrument)))
        else:
            i = int(rng.choice(self.by_instrument[instrument]))
        pool = self.by_instrument[int(self.notes.instrument[i])]
        pitch = self.notes.pitch
        if pitch is None or pitch[i] < 0:
            others = pool[pool != i]
            return i, int(rng.choice(others)) if len(others) else i
        gap = np.where(pitch[pool] >= 0, np.abs(pitch[pool] - pitch[i]), -1)
        far = pool[gap >= self.pair_min]
        if len(far):
            return i, int(rng.choice(far))
        return i, int(pool[int(np.argmax(gap))])

    def clip(self) -> tuple[np.ndarray, int, int, int]:
        """One (clip int16 (crop,), instrument, family, MIDI pitch); the pitch is -1 for a
        clip of concatenated notes or a note set without pitches."""
        rng = self.rng
        i = int(rng.integers(len(self.notes.instrument)))
        inst = int(self.notes.instrument[i])
        fam = int(self.notes.family[i])
        pitch = int(self.notes.pitch[i]) if self.notes.pitch is not None else -1
        if rng.random() < self.concat_prob:
            length = int(rng.integers(self.concat_min, self.concat_max + 1))
            pool = self.by_instrument[inst]
            # enough distinct notes to fill the segment, drawn without replacement
            k = min(len(pool), 16)
            picks = rng.choice(pool, size=k, replace=False)
            seg = concat.concat_notes([self._trimmed(int(j)) for j in picks], length, rng)
            x = concat.random_crop(seg, self.crop, rng)
            pitch = -1
        else:
            x = self._note_clip(i)
        return x, inst, fam, pitch

    def batch(self, size: int) -> tuple:
        """(waves float32 (size, crop), instrument (size,), family (size,)) (``crop``: this
        batch's length where it varies; with ``pair_count`` the first 2 * pair_count clips are
        register pairs, clip 2k and 2k + 1 one instrument's notes far apart), then with
        ``keep_clean`` the same clips before the chain (size, crop), then with ``keep_pitch``
        each clip's MIDI pitch (size,) int64 (-1: several notes). Neither extra draws from
        the generator: batches are the same either way."""
        if self.crop_min:
            self.crop = int(self.rng.integers(self.crop_min, self.crop_max + 1))
        xs = np.empty((size, self.crop), dtype=np.float32)
        yi = np.empty(size, dtype=np.int64)
        yf = np.empty(size, dtype=np.int64)
        yp = np.empty(size, dtype=np.int64)
        n_pair = min(self.pair_count, size // 2)
        previous = None
        for k in range(n_pair):
            sib = None  # with siblings, every second pair is of an instrument of the previous pair's kind
            if self.siblings is not None and k % 2 and len(self.siblings[previous]):
                sib = int(self.rng.choice(self.siblings[previous]))
            picked = self.pair(sib)
            previous = int(self.notes.instrument[picked[0]])
            for slot, i in zip((2 * k, 2 * k + 1), picked):
                xs[slot] = self._note_clip(i).astype(np.float32) / 32768.0
                yi[slot], yf[slot] = self.notes.instrument[i], self.notes.family[i]
                yp[slot] = self.notes.pitch[i] if self.notes.pitch is not None else -1
        for k in range(2 * n_pair, size):
            x, yi[k], yf[k], yp[k] = self.clip()
            xs[k] = x.astype(np.float32) / 32768.0
        clean = xs.copy() if self.keep_clean else None
        if self.chain is not None:
            # bleed: another clip of the batch (almost always another instrument), mixed in low
            other = xs[self.rng.permutation(size)]
            if self.chain_share >= 1.0:
                xs = self.chain(xs, self.rng, bleed=other)
            else:
                wet = self.rng.random(size) < self.chain_share
                if wet.any():
                    xs[wet] = self.chain(xs[wet], self.rng, bleed=other[wet])
        return (xs, yi, yf) + ((clean,) if self.keep_clean else ()) + ((yp,) if self.keep_pitch else ())

    def state(self) -> dict:
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state


class Prefetcher:
    """Makes the next batches in a background thread while the model trains on this one.

    The chain's FFTs (scipy) and codecs (libsndfile through cffi) release the GIL, so the
    thread works beside torch. One thread draws from the sampler's generator in order, so
    the batches are the same whatever the timing; each comes with the generator's state
    after it was drawn, and :attr:`state` is that of the last batch handed out: what a
    checkpoint must save to resume exactly there.
    """

    def __init__(self, sampler: ClipSampler, size: int, depth: int = 2):
        import queue
        import threading

        self.sampler = sampler
        self.size = size
        self.state = sampler.state()
        self._q: "queue.Queue" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="batches", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        import queue

        while not self._stop.is_set():
            try:
                item = (self.sampler.batch(self.size), self.sampler.state())
            except BaseException as err:  # handed to the consumer, which raises it
                item = (err, None)
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item[1] is None:
                return

    def next(self) -> tuple:
        batch, state = self._q.get()
        if state is None:
            raise batch
        self.state = state
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _batch_worker(sampler: ClipSampler, size: int, state: dict, out, stop) -> None:
    """The loop of one :class:`ParallelBatches` process: batches, each with the generator's
    state after it, until told to stop; an error goes out as its traceback."""
    import queue
    import signal
    import traceback

    # a stop asked of the trainer's process group (Ctrl-C, the study's SIGTERM) is the trainer's to
    # handle: it checkpoints first, with this stream's state, then closes the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent = os.getppid()
    sampler.set_state(state)
    while not stop.is_set() and os.getppid() == parent:  # a killed trainer leaves no workers behind
        try:
            item = (sampler.batch(size), sampler.state())
        except BaseException:  # noqa: BLE001  (handed to the consumer, which raises it)
            item = (traceback.format_exc(), None)
        while not stop.is_set() and os.getppid() == parent:
            try:
                out.put(item, timeout=0.1)
                break
            except queue.Full:
                continue
        if item[1] is None:
            return  # the error goes out (flushed at exit) and the trainer raises it
    out.cancel_join_thread()  # stopped, or the trainer died: never wait at exit to flush a batch nobody reads


class ParallelBatches:
    """Training batches made by ``workers`` processes, handed out in a fixed order.

    What a GPU needs: the recording chain costs about 2 ms of one core per 1-s clip, so
    one thread makes about 500 clips/s while an H100 trains on several thousand.

    Logical worker ``j`` of ``n`` owns a generator of its own (seeded ``[seed, j]``, or
    restored from :attr:`state`) and makes the run's batches ``j, j + n, j + 2n, ...``;
    batch ``b`` is taken from worker ``b mod n``. The stream thus depends on the seed and
    ``n``, never on timing, and :attr:`state` (each worker's generator after its last
    batch handed out, and whose turn is next) resumes it exactly where it stopped. The
    processes are forked: they share the notes in memory and never touch the GPU.
    """

    def __init__(self, sampler: ClipSampler, size: int, workers: int, seed: int = 0, state: dict | None = None,
                 depth: int = 2):
        import multiprocessing as mp

        if workers < 1:
            raise ValueError(f"workers must be >= 1, not {workers}")
        if state is not None and len(state["workers"]) != workers:
            raise ValueError(f"the saved batch stream was made by {len(state['workers'])} workers, not {workers}")
        self.n = int(workers)
        self.size = int(size)
        self._states = (list(state["workers"]) if state is not None
                        else [np.random.default_rng([seed, j]).bit_generator.state for j in range(self.n)])
        self._turn = int(state["turn"]) if state is not None else 0
        ctx = mp.get_context("fork")
        self._stop = ctx.Event()
        self._queues = [ctx.Queue(maxsize=depth) for _ in range(self.n)]
        self._procs = [ctx.Process(target=_batch_worker, args=(sampler, self.size, self._states[j], self._queues[j],
                                                               self._stop), name=f"batches-{j}", daemon=True)
                       for j in range(self.n)]
        for p in self._procs:
            p.start()

    @property
    def state(self) -> dict:
        """What a checkpoint saves to resume the stream after the last batch handed out."""
        return {"kind": "parallel", "workers": list(self._states), "turn": self._turn}

    def next(self) -> tuple:
        """The next batch of the stream (as :meth:`ClipSampler.batch` returns it)."""
        import queue

        j = self._turn
        while True:
            try:
                batch, state = self._queues[j].get(timeout=1.0)
                break
            except queue.Empty:
                if not self._procs[j].is_alive():
                    raise RuntimeError(f"batch worker {j} died (exit code {self._procs[j].exitcode})") from None
        if state is None:
            raise RuntimeError(f"batch worker {j} failed:\n{batch}")
        self._states[j] = state
        self._turn = (j + 1) % self.n
        return batch

    def close(self) -> None:
        """Stops the workers at once (SIGKILL: they ignore SIGTERM, which is the trainer's to
        handle). They hold nothing that needs saving (the stream's state lives here), and a
        worker whose queue still holds a batch that will never be read cannot exit by itself
        (its queue's feeder thread waits to flush it)."""
        self._stop.set()
        for p in self._procs:
            if p.is_alive():
                p.kill()
        for p in self._procs:
            p.join(timeout=5)
        for q in self._queues:
            q.close()
            q.cancel_join_thread()
