"""Every benchmark script answers --help (exit 0, a usage line) without doing its work."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_answers_help(script):
    res = subprocess.run([sys.executable, str(script), "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "usage:" in res.stdout


def _benchmark(monkeypatch, name: str):
    """The script ``benchmarks/<name>.py`` as a module."""
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # its `import _common`, for this test only
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_confusions_count_the_accepted_impostor_pairs_per_source(monkeypatch):
    """Two sources; source a's instrument A meets impostors B (twice, one accepted) and C
    (once, accepted); b's instrument B meets A once, rejected: a lists C then B, b nothing."""
    import numpy as np
    import pandas as pd

    from mie_core.scoring.trials import Trials

    rows = pd.DataFrame({"instrument_str": ["A", "A", "B", "B", "C"], "source": ["a", "a", "b", "b", "b"]})
    d = Trials(enroll=np.array([[0], [2]]), model_label=np.array(["A", "B"]), model=np.array([0, 0, 0, 0, 1]),
               test=np.array([1, 2, 3, 4, 0]), target=np.array([True, False, False, False, False]))
    llr = np.array([3.0, 1.0, -1.0, 0.5, -2.0])
    out = _benchmark(monkeypatch, "held_out_verdicts").confusions([(llr, d)], rows, top=5)
    assert list(out) == ["a"]
    (e1, t1, share1, rate1), (e2, t2, share2, rate2) = sorted(out["a"], key=lambda r: r[2])
    assert (e1, t1, share1, rate1) == ("A", "C", 1 / 3, 1.0)
    assert (e2, t2, share2, rate2) == ("A", "B", 2 / 3, 0.5)


def test_nested_choice_picks_the_feature_set_that_carries_over(monkeypatch):
    """Four sources; one feature set separates the classes in every source, the other is
    noise: chosen on the other sources, every held-out source gets the separating set, and
    its LLRs are that set's own leave-one-source-out fit (mixed with s = 1: studio alone)."""
    import numpy as np

    from mie_core.scoring import sources

    mod = _benchmark(monkeypatch, "studio_features")
    rng = np.random.default_rng(0)
    n = 400
    target = np.arange(n) % 2 == 0
    es = np.repeat(np.array(list("abcd")), n // 4)
    ts = es.copy()
    sets = {"noise": rng.normal(size=(n, 2)), "signal": (2.0 * target - 1.0)[:, None] + rng.normal(size=(n, 1))}
    for criterion in ("eer", "worst"):
        llr, chosen = mod.nested_choice(sets, target, es, ts, np.zeros(n), np.ones(n), criterion)
        assert chosen == dict.fromkeys("abcd", "signal")
        np.testing.assert_allclose(llr, sources.leave_one_source_out(sets["signal"], target, es, ts)[0])
    fs = mod.feature_sets(np.arange(18.0).reshape(2, 9), m=4)
    assert [v.shape[1] for v in fs.values()] == [9, 4, 5, 6, 3]
    np.testing.assert_array_equal(fs["l, mean(l) w, w"][0], [0, 1, 2, 3, 1.5 * 8, 8])


def test_pair_trials_gaps_and_bands_split_one_enrolment_as_documented(monkeypatch):
    """Enrolled A (clips 0-2, clips 0 and 1 enrolled) against impostor B (clips 3-4) and not C:
    the trials are A's clip 2 then B's clips; the gaps are to the nearest enrolment pitch; a
    band with both classes gets the (ROCCH) EER of its trials (separable: 0), a band lacking
    either nan."""
    import numpy as np

    mod = _benchmark(monkeypatch, "real_pairs")
    labels = np.array(["A", "A", "A", "B", "B", "C"])
    enroll = np.array([0, 1])
    test, target = mod.pair_trials(labels, enroll, "A", ["B"])
    assert test.tolist() == [2, 3, 4] and target.tolist() == [True, False, False]
    pitch = np.array([60, 72, 61, 66, 80, 40])
    gaps = mod.gap_to_enrolment(pitch, enroll, test)
    assert gaps.tolist() == [1.0, 6.0, 8.0]  # 61 is 1 from 60; 66 is 6 from 60 and 72; 80 is 8 from 72
    eers = mod.banded_eers(np.array([0.9, 0.1, 0.2]), target, np.array([1.0, 1.5, 7.0]), bands=((0, 2), (6, 128)))
    assert eers[0] == 0.0 and np.isnan(eers[1])
    mixed = mod.banded_eers(np.array([0.1, 0.9]), np.array([True, False]), np.array([0.0, 0.0]), bands=((0, 2),))
    assert mixed[0] == 0.5  # the impostor above the genuine trial: the ROCCH EER of a reversed pair is chance
