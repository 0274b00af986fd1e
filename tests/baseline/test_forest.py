"""The statistical baseline: the fast scorer agrees with scikit-learn, the threshold comes from the benign training
scores (a quantile plus a margin), windows that raised alerts stay out of training, a device with little history is
judged by its peer group's model, a restart refits the same model, and an anomalous window raises an alert."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from appliance.baseline import BaselineSettings
from appliance.baseline.anomaly import Models
from appliance.baseline.features import FEATURES, ClosedWindow
from appliance.baseline.forest import FastForest, average_path_length, fit
from appliance.baseline.settings import ModelSettings
from tests.baseline.kit import PLC, SCADA, T0, Site, answer, modbus


def test_the_fast_scorer_agrees_with_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(300, 14)) * 50
    rows[:, 4] = 0.0  # a constant feature, as failed connections usually are
    model = IsolationForest(n_estimators=50, max_samples=256, random_state=7).fit(rows)
    forest = FastForest(model)
    probes = np.vstack([rng.normal(size=(40, 14)) * 80, rows[:10]])
    assert np.allclose(forest.scores(probes), -model.score_samples(probes), rtol=0, atol=1e-12)
    assert average_path_length(1) == 0.0 and average_path_length(2) == 1.0
    assert abs(average_path_length(256) - 10.244) < 1e-3


def test_the_threshold_is_a_quantile_of_the_training_scores_plus_a_margin() -> None:
    rows = np.random.default_rng(2).normal(size=(200, 5))
    forest = fit(rows, 50, 256, 7, 0.99, 0.05)
    assert forest.threshold == float(np.quantile(forest.scores(rows), 0.99)) + 0.05
    again = fit(rows, 50, 256, 7, 0.99, 0.05)  # fixed random_state: the same model
    assert again.scores(rows[:5]) == forest.scores(rows[:5])


def _window(ip: str, k: int, value: float, alerted: bool = False) -> ClosedWindow:
    vector = [value + (k % 7), value, 0, 0, 2, 1, 0, value, 0, 0, 3, 0, float(k % 24), 1.0]
    return ClosedWindow(ip, T0 + 900 * k, tuple(float(v) for v in vector), alerted)


def test_models_own_history_peer_groups_training_windows_and_restore() -> None:
    settings = ModelSettings(min_windows=40, max_windows=100, trees=30)
    groups = {"a": ("cameras", ["b"]), "b": ("cameras", ["a"]), "c": ("cameras", [])}
    models = Models(settings, lambda ip: groups.get(ip, ("", [])))
    for k in range(60):
        models.add(_window("a", k, 100.0), judging=False)
        models.add(_window("b", k, 100.0, alerted=k % 10 == 0), judging=False)  # alerted windows: not training
    for k in range(10):
        models.add(_window("c", k, 100.0), judging=False)
    assert len(models.history["a"]) == 60 and len(models.history["b"]) == 54 and len(models.history["c"]) == 10
    models.refit(T0)
    assert models.judge == {"a": "a", "b": "b"}  # c has no peers with history: not judged
    groups["c"] = ("cameras", ["a", "b"])
    models.refit(T0 + 86400)
    assert models.judge["c"] == "group:cameras" and models.models["group:cameras"].name == "peer group cameras"
    assert models.add(_window("a", 61, 100.0), judging=True) is None
    odd = models.add(ClosedWindow("a", T0, (900.0, 900.0, 0, 0, 40, 9, 30, 900, 50, 20, 30, 10, 3, 0), False), True)
    # beyond every count's training range: the forest cannot isolate it (its splits lie inside the range)
    assert odd is not None and odd.reason == "range" and odd.forest_score < odd.threshold < odd.score < 1
    assert odd.model == "own history"
    assert ("writes", 50.0, 0.0, 0.0) in odd.unusual and len(models.history["a"]) == 61  # not trained on
    restored = Models(settings, lambda ip: groups.get(ip, ("", [])))
    restored.restore(models.histories_to_save(), models.models_to_save() or [])
    assert restored.judge == models.judge and restored.last_fit == T0 + 86400
    for entity, m in models.models.items():
        assert restored.models[entity].forest.threshold == m.forest.threshold
        assert restored.models[entity].forest.score(odd.vector) == m.forest.score(odd.vector)


def test_an_anomalous_window_raises_with_its_score() -> None:
    model = ModelSettings(window=60.0, min_windows=30, trees=30, retrain_every=600.0)
    site = Site(BaselineSettings(learning_days=1 / 24, model=model))
    ts = T0
    while ts < T0 + 3700:
        poll = modbus(SCADA, PLC, "read_holding_registers", ts, address=0, quantity=20)
        site.feed(poll, answer(poll))
        ts += 5.0
    assert SCADA in site.baseline.models.judge and len(site.baseline.models.history[SCADA]) >= 55
    for k in range(300):  # the poller suddenly reads coils, inputs and registers at every address
        site.feed(modbus(SCADA, PLC, "read_holding_registers", ts + k * 0.1, address=k, quantity=1))
    site.tick(ts + 130)
    found = [a for a in site.alerts if a.note == "statistical_anomaly"]
    assert found and {a.src for a in found} <= {SCADA, PLC}
    a = found[0]
    assert 0.5 < a.details["anomaly_score"] <= 1 and a.details["decided_by"] in ("forest", "range")
    assert a.techniques == ("T0846", "T0855") and "benign windows it was learned from (own history)" in a.explanation
    assert "msgs_out" in a.explanation
    assert len(FEATURES) == len(site.baseline.models.history[SCADA][0])
