"""The JSON API on a real replay: the simulated attack chain (simulators.itgen.chain) through the real Pipeline,
its inventory and its alert ring served over HTTP on 127.0.0.1, read page by page and filtered."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from appliance.alert import Alert
from appliance.capture.pcapfile import PcapReader
from appliance.config import Config
from appliance.export.api import ApiSources, RecentAlerts, decode_cursor, encode_cursor
from appliance.export.web import WebServer, start_web
from appliance.model import Asset
from appliance.pipeline import Pipeline
from simulators.itgen.chain import write_chain

ZONES = [
    {"name": "vpn-pool", "cidrs": ["10.8.0.0/24"], "domain": "VPN"},
    {"name": "corp", "cidrs": ["10.20.0.0/16"], "domain": "IT"},
    {"name": "ot-control", "cidrs": ["10.50.1.0/24"], "domain": "OT", "purdue_level": 1},
]

INCIDENTS = [
    {"incident_id": "inc-1", "actor": "10.8.0.23", "state": "open", "severity": "critical", "first_ts": 10.0,
     "last_ts": 50.0, "phases": ["discovery", "credential_access"]},
    {"incident_id": "inc-2", "actor": "10.20.1.5", "state": "closed", "severity": "medium", "first_ts": 1.0,
     "last_ts": 5.0, "phases": ["discovery"]},
    {"incident_id": "inc-3", "actor": "10.20.1.6", "state": "open", "severity": "high", "first_ts": 20.0,
     "last_ts": 30.0, "phases": ["impair_process_control"]},
]  # fmt: skip


@dataclass
class Served:
    """The replay's data and the server answering for it."""

    server: WebServer
    assets: tuple[Asset, ...]
    alerts: tuple[dict[str, Any], ...]

    def get(self, path: str) -> tuple[int, Any, dict[str, str]]:
        """GET a path: status, parsed JSON body, headers."""
        try:
            with urllib.request.urlopen(self.server.url + path, timeout=10) as resp:
                return resp.status, json.loads(resp.read()), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read()), dict(err.headers)

    def walk(self, path: str) -> list[dict[str, Any]]:
        """Every item of a collection, following `next` links."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        while url is not None:
            status, body, headers = self.get(url)
            assert status == 200, body
            items.extend(body["items"])
            assert len(body["items"]) <= body["limit"]
            url = body["next"]
            assert (headers.get("Link") is not None) == (url is not None)
        return items


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    pcap = tmp_path_factory.mktemp("chain") / "chain.pcap"
    write_chain(pcap, seed=1)
    pipeline = Pipeline(Config.model_validate({"zones": ZONES}), None)
    with PcapReader(pcap) as reader:
        pipeline.run(reader)
    pipeline.finish()
    assets = tuple(pipeline.inventory.snapshot())
    sources = ApiSources(lambda: assets, pipeline.recent_alerts.snapshot, lambda: INCIDENTS)
    server = start_web("127.0.0.1:0", CollectorRegistry(), api=sources)
    try:
        yield Served(server, assets, pipeline.recent_alerts.snapshot())
    finally:
        server.stop()


def test_the_replay_has_what_the_filters_need(served: Served) -> None:
    assert len(served.assets) > 200 and len(served.alerts) >= 10
    assert {a.zone for a in served.assets} >= {"vpn-pool", "corp", "ot-control"}
    assert {r["severity"] for r in served.alerts} >= {"medium", "high", "critical"}


def test_assets_page_by_cursor_and_by_offset(served: Served) -> None:
    everything = sorted(a.asset_id for a in served.assets)
    by_cursor = served.walk("/api/v1/assets?limit=50")
    assert [a["asset_id"] for a in by_cursor] == everything  # every asset once, in asset_id order
    by_offset = served.walk("/api/v1/assets?limit=70&offset=0")
    assert by_offset == by_cursor
    status, body, headers = served.get("/api/v1/assets?limit=50")
    assert status == 200 and body["total"] == len(everything) and body["limit"] == 50
    assert body["next"].startswith("/api/v1/assets?limit=50&cursor=")
    assert headers["Link"] == f'<{body["next"]}>; rel="next"' and headers["Content-Type"] == "application/json"
    first = {a.asset_id: a for a in served.assets}[body["items"][0]["asset_id"]]
    assert body["items"][0] == json.loads(json.dumps(first.to_dict()))
    _, body, _ = served.get("/api/v1/assets")
    assert len(body["items"]) == 100  # the default limit
    _, body, _ = served.get(f"/api/v1/assets?offset={len(everything)}")
    assert body == {"items": [], "total": len(everything), "limit": 100, "next": None}


def test_a_cursor_survives_new_data(served: Served) -> None:
    """Keyset paging: an asset added before the cursor neither repeats nor hides an item on later pages."""
    assets = list(served.assets)
    sources = ApiSources(lambda: tuple(assets))
    server = start_web("127.0.0.1:0", CollectorRegistry(), api=sources)
    try:
        other = Served(server, served.assets, ())
        _, page1, _ = other.get("/api/v1/assets?limit=10")
        assets.append(Asset("0000-new", "10.99.0.1", None, 0.0, 0.0))  # sorts before everything seen
        rest = other.walk(page1["next"])
        ids = [a["asset_id"] for a in page1["items"] + rest]
        assert ids == sorted(a.asset_id for a in served.assets)
    finally:
        server.stop()


def _ids(items: list[dict[str, Any]]) -> set[str]:
    return {a["asset_id"] for a in items}


def test_asset_filters(served: Served) -> None:
    assets = served.assets

    def expect(path: str, pick: Any) -> None:
        got = served.walk(path)
        want = {a.asset_id for a in assets if pick(a)}
        assert want, f"{path} selects nothing in the replay: a weak test"
        assert _ids(got) == want, path

    expect("/api/v1/assets?zone=ot-control", lambda a: a.zone == "ot-control")
    expect("/api/v1/assets?zone=ot-control&zone=vpn-pool", lambda a: a.zone in ("ot-control", "vpn-pool"))
    expect("/api/v1/assets?category=plc", lambda a: a.category == "PLC")
    expect("/api/v1/assets?category=IT%20host&zone=vpn-pool",
           lambda a: a.category == "IT host" and a.zone == "vpn-pool")
    expect("/api/v1/assets?protocol=MODBUS", lambda a: "modbus" in a.protocols)
    expect("/api/v1/assets?protocol=ldap&protocol=bacnet", lambda a: {"ldap", "bacnet"} & set(a.protocols))
    expect("/api/v1/assets?vendor=standard", lambda a: a.mac_vendor and "STANDARD" in a.mac_vendor.value)
    expect("/api/v1/assets?ip=10.50.1.10", lambda a: a.ip == "10.50.1.10")
    net = ipaddress.ip_network("10.20.10.0/25")
    expect("/api/v1/assets?ip=10.20.10.0/25&limit=7", lambda a: a.ip and ipaddress.ip_address(a.ip) in net)
    _, body, _ = served.get("/api/v1/assets?zone=nowhere")
    assert body == {"items": [], "total": 0, "limit": 100, "next": None}


def test_alerts_newest_first_with_filters(served: Served) -> None:
    alerts = served.alerts
    everything = served.walk("/api/v1/alerts?limit=5")
    assert len(everything) == len(alerts)
    assert [r["ts"] for r in everything] == sorted((r["ts"] for r in alerts), reverse=True)

    def expect(path: str, pick: Any) -> None:
        got = served.walk(path)
        want = [r for r in everything if pick(r)]
        assert want, f"{path} selects nothing in the replay: a weak test"
        assert got == want, path

    mid = sorted(r["ts"] for r in alerts)[len(alerts) // 2]
    expect("/api/v1/alerts?severity=critical", lambda r: r["severity"] == "critical")
    expect("/api/v1/alerts?severity=high&severity=critical&limit=2", lambda r: r["severity"] in ("high", "critical"))
    expect("/api/v1/alerts?detector=scan", lambda r: r["detector"] == "scan")
    expect("/api/v1/alerts?note=rdp_scan", lambda r: r["note"] == "rdp_scan")
    expect("/api/v1/alerts?technique=t1046", lambda r: "T1046" in r["techniques"])
    expect("/api/v1/alerts?src=10.8.0.0/24", lambda r: r["src"].startswith("10.8.0."))
    expect(f"/api/v1/alerts?since={mid}", lambda r: r["ts"] >= mid)
    expect(f"/api/v1/alerts?until={mid}&limit=3", lambda r: r["ts"] < mid)
    expect("/api/v1/alerts?since=2024-06-04T06:50:10Z&until=2024-06-04T08:53:00%2B02:00",
           lambda r: 1717483810 <= r["ts"] < 1717483980)  # fmt: skip
    _, body, _ = served.get("/api/v1/alerts?src=192.168.0.0/16")
    assert body["items"] == [] and body["total"] == 0


def test_incidents_filters_and_order(served: Served) -> None:
    assert [r["incident_id"] for r in served.walk("/api/v1/incidents?limit=1")] == ["inc-1", "inc-3", "inc-2"]
    assert [r["incident_id"] for r in served.walk("/api/v1/incidents?state=open")] == ["inc-1", "inc-3"]
    assert [r["incident_id"] for r in served.walk("/api/v1/incidents?severity=medium")] == ["inc-2"]
    assert [r["incident_id"] for r in served.walk("/api/v1/incidents?phase=discovery&state=closed")] == ["inc-2"]


def test_incidents_without_a_store_answer_503(served: Served) -> None:
    server = start_web("127.0.0.1:0", CollectorRegistry(), api=ApiSources(lambda: served.assets))
    try:
        status, body, headers = Served(server, (), ()).get("/api/v1/incidents")
        assert (status, body) == (503, {"error": "incidents are not available"})
        assert headers["Content-Type"] == "application/json"
    finally:
        server.stop()


BAD = [
    ("/api/v1/assets?limit=0", "limit", "limit: must be from 1 to 1000 (got 0)"),
    ("/api/v1/assets?limit=1001", "limit", "limit: must be from 1 to 1000"),
    ("/api/v1/assets?limit=ten", "limit", "limit: must be an integer (got 'ten')"),
    ("/api/v1/assets?limit=5&limit=6", "limit", "limit: given more than once"),
    ("/api/v1/assets?offset=-1", "offset", "offset: must be at least 0"),
    ("/api/v1/assets?offset=1&cursor=WyJhIl0", "offset", "offset: give cursor or offset, not both"),
    ("/api/v1/assets?cursor=%%%", "cursor", "cursor: not a cursor from a `next` link"),
    ("/api/v1/assets?cursor=WzEuMF0", "cursor", "cursor: not a cursor of this collection"),
    ("/api/v1/assets?ip=10.0.0.300", "ip", "ip: '10.0.0.300' is not an IP address or network"),
    ("/api/v1/assets?zone=", "zone", "zone: must not be empty"),
    ("/api/v1/assets?zones=ot", "zones", "zones: unknown parameter for /api/v1/assets (known: zone, category"),
    ("/api/v1/alerts?severity=urgent", "severity", "severity: must be one of low, medium, high, critical"),
    ("/api/v1/alerts?since=yesterday", "since", "since: 'yesterday' is neither seconds since the epoch nor an RFC"),
    ("/api/v1/alerts?since=2024-06-03T06:00:00", "since", "since: '2024-06-03T06:00:00' has no time zone"),
    ("/api/v1/alerts?since=1&since=2", "since", "since: given more than once"),
    ("/api/v1/alerts?cursor=WyJhIl0", "cursor", "cursor: not a cursor of this collection"),
    ("/api/v1/incidents?phase=", "phase", "phase: must not be empty"),
    ("/api/v1/incidents?zone=ot", "zone", "zone: unknown parameter for /api/v1/incidents"),
]


@pytest.mark.parametrize(("path", "parameter", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_parameters_are_400_naming_them(served: Served, path: str, parameter: str, message: str) -> None:
    status, body, headers = served.get(path)
    assert status == 400 and body["parameter"] == parameter and body["error"].startswith(message), body
    assert headers["Content-Type"] == "application/json"


def test_unknown_paths_and_methods_are_json_errors(served: Served) -> None:
    status, body, _ = served.get("/api/v1/asset")
    assert (status, body) == (404, {"error": "no such API path: /api/v1/asset"})
    request = urllib.request.Request(served.server.url + "/api/v1/assets", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 405 and err.value.headers["Allow"] == "GET"
    assert json.loads(err.value.read()) == {"error": "the API is read-only: use GET"}


def test_cursor_round_trip() -> None:
    key = (1717483800.5, "scan", "rdp_scan", "k", "10.8.0.23")
    assert decode_cursor(encode_cursor(key), (float, str, str, str, str)) == key


def _alert(n: int) -> Alert:
    return Alert(float(n), "d", "n", "low", 1.0, ("T0846",), "10.0.0.1", ("10.0.0.1",), (), "x", f"k{n}")


def test_recent_alerts_ring_is_bounded_and_snapshots_are_stable() -> None:
    ring = RecentAlerts(size=3)
    assert ring.snapshot() == ()
    for n in range(5):
        ring.append(_alert(n))
    snap = ring.snapshot()
    assert [r["ts"] for r in snap] == [2.0, 3.0, 4.0] and ring.total == 5
    assert ring.snapshot() is snap  # nothing new: the same tuple (the API keeps its sorted copy)
    ring.append(_alert(5))
    assert [r["ts"] for r in snap] == [2.0, 3.0, 4.0]  # a snapshot never changes
    assert [r["ts"] for r in ring.snapshot()] == [3.0, 4.0, 5.0]


def test_the_pipeline_feeds_the_ring(served: Served, tmp_path: Path) -> None:
    """The ring holds exactly the alerts the pipeline logged to alerts.jsonl."""
    pcap = tmp_path / "chain.pcap"
    write_chain(pcap, seed=1)
    pipeline = Pipeline(Config.model_validate({"zones": ZONES}), tmp_path / "logs")
    with PcapReader(pcap) as reader:
        pipeline.run(reader)
    pipeline.finish()
    logged = [json.loads(line) for line in (tmp_path / "logs" / "alerts.jsonl").read_text().splitlines()]
    assert list(pipeline.recent_alerts.snapshot()) == logged == list(served.alerts)
