"""The verification protocol of the paper (Sec. V-B-3), done without the release's flaws.

Per test instrument: ``n_enroll`` clips (5) are its enrolment, their embeddings
averaged; ``n_target`` (20) other clips of it are target trials and ``n_nontarget``
(20) clips of other instruments are non-target trials, each scored by the cosine
similarity between the clip's embedding and the enrolment mean.

Unlike the authors' release: every draw is without replacement, an enrolment clip
is never a trial (of its own or of any other instrument), trials are drawn once, and
everything comes from the ``numpy.random.Generator`` passed in. An instrument with
fewer than ``n_enroll + n_target`` clips gives as many target trials as it has
clips left after enrolment (at least one), and one with fewer than ``n_enroll + 1``
clips is left out.

Trial lists are written and read in the Kaldi/VoxCeleb style, one trial per line,
``enrol_id test_id target|nontarget``, with the enrolment in a second text
(``enrol_id clip_id clip_id ...``), so that runs can be re-scored on identical trials.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mie_core.evaluation.embeddings import unit


@dataclass(frozen=True)
class Trials:
    """Indices into one embedding table.

    enroll: (n_models, n_enroll) clip indices of each enrolled instrument.
    model_label: (n_models,) the label of each enrolled instrument.
    model: (n_trials,) which enrolment each trial is scored against.
    test: (n_trials,) the clip scored.
    target: (n_trials,) bool.
    """

    enroll: np.ndarray
    model_label: np.ndarray
    model: np.ndarray
    test: np.ndarray
    target: np.ndarray

    @property
    def n_target(self) -> int:
        return int(self.target.sum())

    @property
    def n_nontarget(self) -> int:
        return int((~self.target).sum())


def make_trials(labels, rng: np.random.Generator, n_enroll: int = 5, n_target: int = 20, n_nontarget: int = 20) -> Trials:
    """Draw the protocol's enrolments and trials for clips with instrument ``labels``."""
    labels = np.asarray(labels)
    if n_enroll < 1 or n_target < 1 or n_nontarget < 0:
        raise ValueError("need n_enroll >= 1, n_target >= 1, n_nontarget >= 0")
    uniq = np.unique(labels)
    by_label = {u: np.flatnonzero(labels == u) for u in uniq}
    enroll, kept = [], []
    rest: dict = {}
    for u in uniq:
        idx = by_label[u]
        if idx.size < n_enroll + 1:
            continue
        perm = rng.permutation(idx)
        enroll.append(np.sort(perm[:n_enroll]))
        rest[u] = perm[n_enroll:]
        kept.append(u)
    if len(kept) < 2:
        raise ValueError(f"the protocol needs at least two instruments with {n_enroll + 1} or more clips")
    enrolled = np.zeros(labels.size, bool)
    enrolled[np.concatenate(enroll)] = True
    pool = np.flatnonzero(~enrolled & np.isin(labels, kept))  # clips that may be trials
    models, tests, targets = [], [], []
    for m, u in enumerate(kept):
        own = rest[u][:n_target]  # rest is already a random permutation
        others = pool[labels[pool] != u]
        k = min(n_nontarget, others.size)
        non = rng.choice(others, size=k, replace=False) if k else np.zeros(0, int)
        models.append(np.full(own.size + non.size, m))
        tests.append(np.concatenate([np.sort(own), np.sort(non)]))
        targets.append(np.concatenate([np.ones(own.size, bool), np.zeros(non.size, bool)]))
    return Trials(np.stack(enroll), np.asarray(kept), np.concatenate(models), np.concatenate(tests), np.concatenate(targets))


def score_trials(embeddings, trials: Trials) -> np.ndarray:
    """Cosine score of every trial, (n_trials,) float64."""
    e = unit(embeddings)
    centres = unit(e[trials.enroll].mean(axis=1))
    return np.einsum("ij,ij->i", centres[trials.model], e[trials.test]).astype(np.float64)


def verification_scores(embeddings, labels, rng: np.random.Generator, n_enroll: int = 5, n_target: int = 20,
                        n_nontarget: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The whole protocol in one call: (target_scores, nontarget_scores)."""
    trials = make_trials(labels, rng, n_enroll, n_target, n_nontarget)
    s = score_trials(embeddings, trials)
    return s[trials.target], s[~trials.target]


def trials_to_text(trials: Trials, ids, model_ids=None) -> tuple[str, str]:
    """(trial list, enrolment list) as Kaldi-style text; ``ids`` names each clip."""
    ids = np.asarray(ids)
    names = np.asarray(model_ids) if model_ids is not None else np.asarray([f"{l}" for l in trials.model_label])
    lines = [f"{names[m]} {ids[t]} {'target' if y else 'nontarget'}"
             for m, t, y in zip(trials.model, trials.test, trials.target)]
    enrol = [f"{names[m]} " + " ".join(ids[trials.enroll[m]]) for m in range(len(names))]
    return "\n".join(lines) + "\n", "\n".join(enrol) + "\n"


def trials_from_text(trial_text: str, enroll_text: str, ids) -> Trials:
    """Parse what :func:`trials_to_text` wrote back into indices of ``ids``."""
    pos = {str(c): i for i, c in enumerate(ids)}
    names, enroll = [], []
    for line in enroll_text.strip().splitlines():
        parts = line.split()
        try:
            enroll.append([pos[c] for c in parts[1:]])
        except KeyError as err:
            raise ValueError(f"enrolment clip {err.args[0]!r} is not in this embedding table") from None
        names.append(parts[0])
    if len({len(e) for e in enroll}) != 1:
        raise ValueError("every enrolment must have the same number of clips")
    mpos = {n: i for i, n in enumerate(names)}
    model, test, target = [], [], []
    for k, line in enumerate(trial_text.strip().splitlines()):
        parts = line.split()
        if len(parts) != 3 or parts[2] not in ("target", "nontarget"):
            raise ValueError(f"trial line {k + 1} is not 'enrol_id test_id target|nontarget': {line!r}")
        if parts[0] not in mpos or parts[1] not in pos:
            raise ValueError(f"trial line {k + 1} names an unknown enrolment or clip: {line!r}")
        model.append(mpos[parts[0]])
        test.append(pos[parts[1]])
        target.append(parts[2] == "target")
    return Trials(np.asarray(enroll), np.asarray(names), np.asarray(model), np.asarray(test), np.asarray(target, bool))
