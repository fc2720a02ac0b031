"""What a clip sounds like it was recorded as: a render, a room (or phone), or a studio recording.

The fusion's own detector (:class:`mie_core.scoring.fusion.ConditionDetector`) knows two
conditions, the clean renders and the same renders through the recording chain, and real
studio notes fall between them ("16 % clean"). This model adds the third: a multinomial
logistic regression over a clip's *inputs*: the six numbers that describe its recording
(``inputs="recording"``, :func:`mie_core.data.recording.recording_features`, standardised
on the renders), the members' back-end vectors (``"members"``,
:func:`mie_core.scoring.fusion.member_vectors`; the first model, which still loads), or both
side by side (``"recording+members"``, shipped: both verdict rates at 90 % or more on every
real source held out, docs/experiments/studio-condition.md#both), fitted on

* ``render``: clean renders of training instruments (the ``bank`` part);
* ``room``: the same notes through the training rooms' recording chain (``bankwet``);
* ``studio``: real single notes recorded in studios (the real sources fetched).

A trial's studio weight ``s`` is the smaller of its enrolment's mean P(studio) and its test
clip's (a trial is as much a studio trial as its least studio side, as the fusion's trial
quality), and a system scores it ``s llr_studio + (1 - s) llr_own``
(:func:`mixed_llr`): the fusion's weights refitted on real notes where the clips sound like
studio recordings, its own weights (fitted on renders and rooms) elsewhere.

>>> rng = np.random.default_rng(0)
>>> make = lambda c: rng.normal(c, 1.0, size=(50, 3))
>>> m = fit_condition_model(make([3, 0, 0]), make([0, 3, 0]), make([0, 0, 3]))
>>> m.proba(np.array([[0.0, 0.0, 4.0]])).argmax(axis=1).tolist(), CONDITIONS[STUDIO]
([2], 'studio')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mie_core.data.recording import NAMES as RECORDING_NAMES

CONDITIONS = ("render", "room", "studio")
RENDER, ROOM, STUDIO = 0, 1, 2
# the words the pages use for each condition (a musician's, not the model's)
WORDS = {"render": "a clean synthesized note", "room": "a room or phone recording", "studio": "a studio recording"}
UNSURE_BELOW = 0.6  # below this top probability a clip is "between" conditions
# what a condition model reads of a clip (module docstring); "recording+members": the six
# recording features, then the members' back-end vectors, side by side
INPUTS = ("recording", "members", "recording+members")
N_RECORDING = len(RECORDING_NAMES)  # recording features per clip


@dataclass(frozen=True)
class ConditionModel:
    """``proba(x)``: (n, 3) P(render, room, studio) of clips from their (n, k) inputs: the
    six recording features (``inputs`` "recording", as they come: the renders' standardisation
    is folded into ``coef`` and ``intercept``), the members' back-end vectors ("members"), or
    both side by side, the recording features first ("recording+members")."""

    coef: np.ndarray  # (3, k)
    intercept: np.ndarray  # (3,)
    inputs: str = "members"

    def proba(self, x: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(x, np.float64))
        if x.shape[1] != self.coef.shape[1]:
            raise ValueError(f"the condition model reads {self.coef.shape[1]} {self.inputs} values per clip, "
                             f"not {x.shape[1]}")
        z = x @ self.coef.T + self.intercept
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def to_dict(self) -> dict:
        return {"classes": list(CONDITIONS), "inputs": self.inputs, "coef": self.coef.tolist(),
                "intercept": self.intercept.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "ConditionModel":
        coef, intercept = np.asarray(d["coef"], np.float64), np.asarray(d["intercept"], np.float64)
        inputs = d.get("inputs", "members")  # a file from before the recording features
        if list(d.get("classes", CONDITIONS)) != list(CONDITIONS) or coef.ndim != 2 or coef.shape[0] != 3 \
                or intercept.shape != (3,) or not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise ValueError(f"not a condition model of the classes {CONDITIONS} (coef {coef.shape})")
        if inputs not in INPUTS:
            raise ValueError(f"a condition model reads one of {INPUTS}, not {inputs!r}")
        return cls(coef, intercept, inputs)


def fit_condition_model(render: np.ndarray, room: np.ndarray, studio: np.ndarray, c: float = 1.0,
                        inputs: str = "members") -> ConditionModel:
    """Multinomial logistic regression (L2, inverse strength ``c``) of the three classes'
    (n_i, k) inputs, the classes weighted equally whatever their counts. Recording features
    (``inputs`` "recording": dB, kHz and ratios on unlike scales) are standardised on the
    renders (``render`` and ``room``, never the real notes) before the fit, and the scaling is
    folded into the returned coefficients, so :meth:`ConditionModel.proba` takes them raw
    (with "recording+members", the first :data:`N_RECORDING` columns alone)."""
    from sklearn.linear_model import LogisticRegression

    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, not {inputs!r}")
    xs = [np.atleast_2d(np.asarray(v, np.float64)) for v in (render, room, studio)]
    if any(len(x) == 0 for x in xs) or len({x.shape[1] for x in xs}) != 1:
        raise ValueError(f"need inputs of one width for every condition, not {[x.shape for x in xs]}")
    mu, sd = np.zeros(xs[0].shape[1]), np.ones(xs[0].shape[1])
    if inputs != "members":
        k = N_RECORDING if inputs == "recording+members" else xs[0].shape[1]
        renders = np.concatenate(xs[:2])[:, :k]
        mu[:k], sd[:k] = renders.mean(0), renders.std(0)
        sd[sd == 0] = 1.0
    x = (np.concatenate(xs) - mu) / sd
    y = np.concatenate([np.full(len(v), k) for k, v in enumerate(xs)])
    m = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(x, y)
    coef = m.coef_ / sd
    return ConditionModel(coef, m.intercept_ - coef @ mu, inputs)


RULES = ("studio", "not-room")


def clip_weight(model: ConditionModel, vectors: np.ndarray, rule: str = "studio") -> np.ndarray:
    """(n,) each clip's studio weight: P(studio) (``rule`` "studio", shipped) or 1 - P(room)
    ("not-room": renders take the studio weights too; measured, not shipped)."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, not {rule!r}")
    p = model.proba(vectors)
    return p[:, STUDIO] if rule == "studio" else 1.0 - p[:, ROOM]


def trial_weight(p_studio: np.ndarray, trials) -> np.ndarray:
    """(n_trials,) ``min(mean P(studio) of the trial's enrolment clips, P(studio) of its test
    clip)``; ``p_studio``: (n_clips,), ``trials``: a :class:`mie_core.scoring.trials.Trials`."""
    p = np.asarray(p_studio, np.float64)
    return np.minimum(p[trials.enroll].mean(axis=1)[trials.model], p[trials.test])


def mixed_llr(llr_own: np.ndarray, llr_studio: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``s llr_studio + (1 - s) llr_own``, elementwise (the studio weight ``s`` in [0, 1]).

    >>> mixed_llr(np.array([1.0, 1.0]), np.array([-1.0, -1.0]), np.array([0.0, 0.75])).tolist()
    [1.0, -0.5]
    """
    s = np.clip(np.asarray(s, np.float64), 0.0, 1.0)
    return (1.0 - s) * np.asarray(llr_own, np.float64) + s * np.asarray(llr_studio, np.float64)


def describe(p: np.ndarray) -> str:
    """Words for one clip's (3,) probabilities: "sounds like a studio recording", or, when no
    condition reaches :data:`UNSURE_BELOW`, "sounds between a studio recording and a room or
    phone recording".

    >>> describe(np.array([0.05, 0.1, 0.85])), describe(np.array([0.1, 0.45, 0.45]))
    ('sounds like a studio recording', 'sounds between a room or phone recording and a studio recording')
    """
    p = np.asarray(p, np.float64)
    order = np.argsort(-p, kind="stable")
    if p[order[0]] >= UNSURE_BELOW:
        return f"sounds like {WORDS[CONDITIONS[order[0]]]}"
    a, b = sorted(order[:2])
    return f"sounds between {WORDS[CONDITIONS[a]]} and {WORDS[CONDITIONS[b]]}"
