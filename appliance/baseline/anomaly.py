"""The statistical baseline: per-device (or per-peer-group) IsolationForests over feature windows, and the
training range of each count (ModelSettings: an isolation tree cannot isolate a value beyond the training range).

Every closed window of a device goes into its history unless an alert named the device in it or the model found
it anomalous (the history holds benign windows only, at most `max_windows` per device). Models are fitted when
the site starts protecting and refitted every `retrain_every` seconds of packet time: a device with at least
`min_windows` benign windows gets a model of its own; one with fewer is judged by its peer group's model (the
members' histories pooled) when there is one. The rows a model was fitted on are kept with it, so a restart
refits the same model (fixed random_state) instead of relearning.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.baseline.features import FEATURES, ClosedWindow
from appliance.baseline.forest import FastForest, fit
from appliance.baseline.settings import ModelSettings

# the counts judged against their training range: those of decoded messages and connection attempts (packets and
# bytes come with finished connections, which a long-lived session gives once in days: lumpy, for the forest only)
RANGED = ("msgs_out", "msgs_in", "peers", "failed", "reads", "writes", "exceptions", "operations")
COUNTS = tuple(i for i, name in enumerate(FEATURES) if name in RANGED)


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A window a model found anomalous: device, window, its anomaly score (0-1: the forest's score, or how far a
    count went beyond its training range when that is higher), the forest's score and threshold, the model, the
    features outside their training range, and what decided it (`forest` or `range`)."""

    ip: str
    start: float
    end: float
    score: float
    forest_score: float
    threshold: float
    model: str  # "own history" or "peer group <description>"
    trained_on: int
    unusual: tuple[tuple[str, float, float, float], ...]  # (feature, value, lowest, highest in training)
    vector: tuple[float, ...] = ()
    reason: str = "forest"


@dataclass
class _Model:
    forest: FastForest
    rows: np.ndarray
    name: str
    lows: list[float]
    highs: list[float]


def encode_rows(rows: np.ndarray) -> str:
    """Rows as base64 of little-endian float32."""
    return base64.b64encode(np.asarray(rows, dtype="<f4").tobytes()).decode()


def decode_rows(text: str, width: int) -> np.ndarray:
    """Rows back from `encode_rows`."""
    flat = np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)
    return flat.reshape(-1, width) if flat.size else np.zeros((0, width))


class Models:
    """Benign window histories, fitted models, and the anomalies found (pipeline thread only)."""

    def __init__(self, settings: ModelSettings, group_of: Callable[[str], tuple[str, list[str]]]) -> None:
        self.settings = settings
        self.group_of = group_of  # ip -> (group description, the other members)
        self.history: dict[str, deque[tuple[float, ...]]] = {}
        self.models: dict[str, _Model] = {}  # entity ("ip" or "group:<description>") -> model
        self.judge: dict[str, str] = {}  # ip -> entity of the model that judges it
        self.last_fit: float | None = None
        self.dirty: set[str] = set()  # histories changed since the last save
        self.fitted_dirty = False

    def add(self, win: ClosedWindow, judging: bool) -> Anomaly | None:
        """A closed window; scored when `judging` and a model covers the device; kept when benign."""
        found = None
        if judging:
            entity = self.judge.get(win.ip)
            model = self.models.get(entity) if entity is not None else None
            if model is not None:
                score = model.forest.score(win.vector)
                beyond = self._beyond(win.vector, model)
                if score > model.forest.threshold or beyond > 0:
                    found = Anomaly(
                        win.ip, win.start, win.start + self.settings.window, max(score, beyond), score,
                        model.forest.threshold, model.name, len(model.rows), self._unusual(win.vector, model),
                        win.vector, "forest" if score > model.forest.threshold else "range",
                    )  # fmt: skip
        if found is None and not win.alerted:
            hist = self.history.get(win.ip)
            if hist is None:
                hist = self.history[win.ip] = deque(maxlen=self.settings.max_windows)
            hist.append(win.vector)
            self.dirty.add(win.ip)
        return found

    def due(self, now: float) -> bool:
        """True when the models should be (re)fitted at packet time `now`."""
        return self.last_fit is None or now - self.last_fit >= self.settings.retrain_every

    def refit(self, now: float) -> None:
        """Fit every model from the benign histories (own history, else the peer group's pooled one)."""
        s = self.settings
        self.models.clear()
        self.judge.clear()
        for ip in sorted(self.history):
            rows = self.history[ip]
            if len(rows) >= s.min_windows:
                self._fit(ip, np.asarray(rows, dtype=np.float64), "own history")
                self.judge[ip] = ip
        for ip in sorted(self.history):
            if ip in self.judge:
                continue
            name, members = self.group_of(ip)
            pooled = [self.history[m] for m in members if len(self.history.get(m, ())) >= s.min_windows]
            if not pooled:
                continue
            entity = f"group:{name}"
            if entity not in self.models:
                share = max(1, s.max_windows // len(pooled))
                group_rows = np.asarray([r for h in pooled for r in list(h)[-share:]], dtype=np.float64)
                self._fit(entity, group_rows, f"peer group {name}")
            self.judge[ip] = entity
        self.last_fit = now
        self.fitted_dirty = True

    def _fit(self, entity: str, rows: np.ndarray, name: str) -> None:
        s = self.settings
        forest = fit(rows, s.trees, s.max_samples, s.random_state, s.quantile, s.margin)
        self.models[entity] = _Model(forest, rows, name, rows.min(axis=0).tolist(), rows.max(axis=0).tolist())

    def _beyond(self, vector: tuple[float, ...], model: _Model) -> float:
        """How far the count furthest above its training maximum went, as a score: 0 when none is beyond the margin
        (ModelSettings.range_*), 0.5 at one margin above the maximum, towards 1 further away."""
        s = self.settings
        worst = 0.0
        for i in COUNTS:
            hi = model.highs[i]
            margin = max(s.range_span * (hi - model.lows[i]), s.range_fraction * hi, s.range_minimum)
            if vector[i] > hi + margin and margin > 0:
                worst = max(worst, 1.0 - margin / (2.0 * (vector[i] - hi)))
        return worst

    @staticmethod
    def _unusual(vector: tuple[float, ...], model: _Model) -> tuple[tuple[str, float, float, float], ...]:
        out = []
        for name, value, lo, hi in zip(FEATURES, vector, model.lows, model.highs, strict=True):
            if value < lo or value > hi:
                out.append((name, value, lo, hi))
        return tuple(out)

    # ---- persistence ----

    def histories_to_save(self) -> list[tuple[str, dict[str, Any]]]:
        """The histories changed since the last call, as (ip, JSON-able data)."""
        out = [(ip, {"rows": encode_rows(np.asarray(self.history[ip])), "width": len(FEATURES)})
               for ip in sorted(self.dirty) if ip in self.history]  # fmt: skip
        self.dirty.clear()
        return out

    def models_to_save(self) -> list[tuple[str, dict[str, Any]]] | None:
        """Every model's training rows and which devices it judges (None when unchanged since the last call)."""
        if not self.fitted_dirty:
            return None
        self.fitted_dirty = False
        judged: dict[str, list[str]] = {}
        for ip, entity in sorted(self.judge.items()):
            judged.setdefault(entity, []).append(ip)
        return [(entity, {"rows": encode_rows(m.rows), "width": len(FEATURES), "name": m.name,
                          "judges": judged.get(entity, []), "last_fit": self.last_fit})
                for entity, m in sorted(self.models.items())]  # fmt: skip

    def restore(self, histories: Iterable[tuple[str, dict[str, Any]]], models: Iterable[tuple[str, dict[str, Any]]]
                ) -> None:  # fmt: skip
        """Resume: the histories, and each model refitted from its saved rows (the same model: fixed seed)."""
        width = len(FEATURES)
        for ip, data in histories:
            if int(data.get("width", 0)) != width:
                continue  # saved by another feature set: relearnt
            rows = decode_rows(str(data.get("rows", "")), width)
            self.history[ip] = deque((tuple(r) for r in rows.tolist()), maxlen=self.settings.max_windows)
        for entity, data in models:
            if int(data.get("width", 0)) != width:
                continue
            rows = decode_rows(str(data.get("rows", "")), width)
            if len(rows) < 2:
                continue
            self._fit(entity, rows, str(data.get("name", entity)))
            for ip in data.get("judges", ()):
                self.judge[str(ip)] = entity
            last = data.get("last_fit")
            if last is not None:
                self.last_fit = max(self.last_fit or 0.0, float(last))
