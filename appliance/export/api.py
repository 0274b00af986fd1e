"""The read-only JSON API: /api/v1/assets, /api/v1/alerts, /api/v1/incidents and /api/v1/openapi.json.

Data comes from callables that return immutable snapshots published by the pipeline thread (the API never touches
the pipeline's own state). Every list is paginated (`limit`, then `cursor` from the `next` link, or `offset`) and
filterable (appliance/export/apiquery.py); a page is `{"items": [...], "total": N, "limit": L, "next": URL|null}`
with a `Link: <URL>; rel="next"` header. Errors are JSON too: `{"error": "...", "parameter": "..."}` with 400 for a
bad or unknown parameter, 404, 405, and 503 when a source is not available.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from appliance.alert import Alert
from appliance.export.apiquery import (
    ALERTS,
    ASSETS,
    COLLECTIONS,
    DEFAULT_LIMIT,
    INCIDENTS,
    MAX_LIMIT,
    BadParameter,
    Collection,
)
from appliance.export.jsonl import _dumps as jsonl_dumps  # one JSON rendering for alerts.jsonl and the API
from appliance.model import Asset

API_PREFIX = "/api/v1/"
OPENAPI_PATH = "/api/v1/openapi.json"
RECENT_ALERTS = 10_000


class RecentAlerts:
    """The last `size` alerts as alerts.jsonl rows: appended on the pipeline thread, read as snapshots elsewhere."""

    def __init__(self, size: int = RECENT_ALERTS) -> None:
        self._rows: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._snapshot: tuple[dict[str, Any], ...] = ()
        self._stale = False
        self.total = 0  # alerts ever appended (those beyond `size` have left the ring)

    def append(self, alert: Alert) -> None:
        """Keep an alert (the oldest one leaves when the ring is full) as its alerts.jsonl row, decoded."""
        row = orjson.loads(jsonl_dumps(alert.to_dict()))  # plain JSON values: what alerts.jsonl holds
        with self._lock:
            self._rows.append(row)
            self.total += 1
            self._stale = True

    def snapshot(self) -> tuple[dict[str, Any], ...]:
        """The kept alerts, oldest first (the same tuple until an alert arrives)."""
        with self._lock:
            if self._stale:
                self._snapshot = tuple(self._rows)
                self._stale = False
            return self._snapshot


@dataclass(frozen=True)
class ApiSources:
    """Where the API reads from; None for a source the sensor does not have (its endpoint answers 503)."""

    assets_fn: Callable[[], Sequence[Asset]]
    alerts_fn: Callable[[], Sequence[dict[str, Any]]] | None = None
    incidents_fn: Callable[[], Sequence[dict[str, Any]]] | None = None


def _dumps(obj: Any) -> bytes:
    return jsonl_dumps(obj)


def json_response(
    start_response: Callable[..., Any], status: str, body: Any, extra: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    """Answer with a JSON body."""
    data = _dumps(body)
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *extra]
    start_response(status, headers)
    return [data]


def json_error(start_response: Callable[..., Any], status: str, message: str, parameter: str | None = None,
               extra: Iterable[tuple[str, str]] = ()) -> list[bytes]:  # fmt: skip
    """Answer with a JSON error: `{"error": message}` (and the bad parameter's name)."""
    body: dict[str, Any] = {"error": message}
    if parameter is not None:
        body["parameter"] = parameter
    return json_response(start_response, status, body, extra)


def encode_cursor(key: tuple[Any, ...]) -> str:
    """An opaque cursor for a sort key."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode("ascii").rstrip("=")


def decode_cursor(text: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """The sort key in a cursor; BadParameter when it is not one of this collection."""
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError):
        raise BadParameter("cursor", "not a cursor from a `next` link") from None
    if not isinstance(value, list) or len(value) != len(types):
        raise BadParameter("cursor", "not a cursor of this collection")
    out: list[Any] = []
    for item, kind in zip(value, types, strict=True):
        if kind is float and isinstance(item, int | float) and not isinstance(item, bool):
            out.append(float(item))
        elif kind is str and isinstance(item, str):
            out.append(item)
        else:
            raise BadParameter("cursor", "not a cursor of this collection")
    return tuple(out)


def _int_param(name: str, text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadParameter(name, f"must be an integer (got {text!r})") from None
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise BadParameter(name, f"must be {bound} (got {value})")
    return value


@dataclass
class Query:
    """A parsed request: filters (name -> values), paging, and the query pairs to repeat in `next` links."""

    filters: dict[str, list[Any]]
    limit: int
    cursor: tuple[Any, ...] | None
    offset: int | None
    keep: list[tuple[str, str]]


def parse_query(collection: Collection, query_string: str) -> Query:
    """Read a query string against a collection's parameters; BadParameter names the first bad one."""
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
    except ValueError as exc:
        raise BadParameter("query", str(exc)) from None
    params = {p.name: p for p in collection.filters}
    filters: dict[str, list[Any]] = {}
    paging: dict[str, str] = {}
    keep: list[tuple[str, str]] = []
    for name, text in pairs:
        if name in ("limit", "cursor", "offset"):
            if name in paging:
                raise BadParameter(name, "given more than once")
            paging[name] = text
            continue
        param = params.get(name)
        if param is None:
            allowed = ", ".join([*params, "limit", "cursor", "offset"])
            raise BadParameter(name, f"unknown parameter for /api/v1/{collection.name} (known: {allowed})")
        if not param.repeatable and name in filters:
            raise BadParameter(name, "given more than once")
        try:
            filters.setdefault(name, []).append(param.parse(text))
        except ValueError as exc:
            raise BadParameter(name, str(exc)) from None
        keep.append((name, text))
    if "cursor" in paging and "offset" in paging:
        raise BadParameter("offset", "give cursor or offset, not both")
    limit = _int_param("limit", paging["limit"], 1, MAX_LIMIT) if "limit" in paging else DEFAULT_LIMIT
    offset = _int_param("offset", paging["offset"], 0, None) if "offset" in paging else None
    cursor = decode_cursor(paging["cursor"], collection.key_types) if "cursor" in paging else None
    return Query(filters, limit, cursor, offset, keep)


class _Ordered:
    """A source's snapshot in the collection's order, kept until the source hands out another snapshot."""

    def __init__(self, collection: Collection) -> None:
        self._collection = collection
        self._cache: tuple[object, list[Any], list[tuple[Any, ...]]] | None = None

    def get(self, snapshot: Sequence[Any]) -> tuple[list[Any], list[tuple[Any, ...]]]:
        cached = self._cache
        if cached is not None and cached[0] is snapshot:
            return cached[1], cached[2]
        key = self._collection.sort_key
        rows = sorted(snapshot, key=key, reverse=self._collection.newest_first)
        keys = [key(r) for r in rows]
        self._cache = (snapshot, rows, keys)
        return rows, keys


def page(collection: Collection, rows: list[Any], keys: list[tuple[Any, ...]], query: Query) -> dict[str, Any]:
    """Filter the ordered rows and cut one page; `next` repeats the filters and carries the cursor or offset."""
    checks = [(p.match, query.filters[p.name]) for p in collection.filters if p.name in query.filters]
    chosen = [i for i, row in enumerate(rows) if all(match(row, values) for match, values in checks)]
    total = len(chosen)
    if query.offset is not None:
        start = query.offset
    elif query.cursor is not None:
        after = query.cursor
        if collection.newest_first:
            start = next((n for n, i in enumerate(chosen) if keys[i] < after), total)
        else:
            start = next((n for n, i in enumerate(chosen) if keys[i] > after), total)
    else:
        start = 0
    picked = chosen[start : start + query.limit]
    more = start + query.limit < total
    link: str | None = None
    if more:
        pairs = [*query.keep, ("limit", str(query.limit))]
        if query.offset is not None:
            pairs.append(("offset", str(start + query.limit)))
        else:
            pairs.append(("cursor", encode_cursor(keys[picked[-1]])))
        link = f"{collection.path}?{urlencode(pairs)}"
    items = [rows[i].to_dict() if isinstance(rows[i], Asset) else rows[i] for i in picked]
    return {"items": items, "total": total, "limit": query.limit, "next": link}


def make_api_app(sources: ApiSources, openapi: Callable[[], dict[str, Any]]) -> Callable[..., Iterable[bytes]]:
    """The WSGI app for paths under /api/v1/ (`openapi` builds the document served at /api/v1/openapi.json)."""
    funcs: dict[str, Callable[[], Sequence[Any]] | None] = {
        ASSETS.name: sources.assets_fn,
        ALERTS.name: sources.alerts_fn,
        INCIDENTS.name: sources.incidents_fn,
    }
    by_path = {c.path: c for c in COLLECTIONS}
    ordered = {c.name: _Ordered(c) for c in COLLECTIONS}
    document: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Route one API request."""
        path = environ.get("PATH_INFO", "")
        if path != OPENAPI_PATH and path not in by_path:
            return json_error(start_response, "404 Not Found", f"no such API path: {path}")
        if environ.get("REQUEST_METHOD") != "GET":
            return json_error(start_response, "405 Method Not Allowed", "the API is read-only: use GET",
                              extra=[("Allow", "GET")])  # fmt: skip
        if path == OPENAPI_PATH:
            if not document:
                document.append(_dumps(openapi()))
            data = document[0]
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        collection = by_path[path]
        fn = funcs[collection.name]
        if fn is None:
            return json_error(start_response, "503 Service Unavailable", f"{collection.name} are not available")
        try:
            query = parse_query(collection, environ.get("QUERY_STRING", ""))
        except BadParameter as exc:
            return json_error(start_response, "400 Bad Request", str(exc), exc.name)
        rows, keys = ordered[collection.name].get(fn())
        body = page(collection, rows, keys, query)
        extra = [("Link", f'<{body["next"]}>; rel="next"')] if body["next"] else []
        return json_response(start_response, "200 OK", body, extra)

    return app
