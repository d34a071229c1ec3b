"""The park simulator: determinism, shapes, units, faults, and the way to a real broker,
ingest and derived usage compared with the simulator's ground truth."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest
from click.testing import CliRunner

from parkcarbon.db import connect
from parkcarbon.ingest.simulator.loadshapes import solar_elevation_deg
from parkcarbon.ingest.simulator.simulate import (
    FAULTS,
    SimMessage,
    SimulatorError,
    generate,
    ground_truth,
    publish,
)
from parkcarbon.ingest.usage.derive import derive_usage
from parkcarbon.registry import CounterType, Registry, load_registry
from support import EXAMPLE_REGISTRY, Broker

TZ = ZoneInfo("Asia/Shanghai")


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=TZ).astimezone(UTC)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry(EXAMPLE_REGISTRY)


def readings_of(msg: SimMessage) -> list[dict]:
    body = json.loads(msg.payload)
    return list(body.get("readings", [body]))


def test_same_seed_same_messages(registry: Registry) -> None:
    start = local_midnight(date(2026, 1, 5))
    args = {"start": start, "end": start + timedelta(hours=6), "faults": FAULTS}
    first = list(generate(registry, seed=4, **args))
    assert first == list(generate(registry, seed=4, **args))
    assert first != list(generate(registry, seed=5, **args))
    times = [m.sim_time for m in first]
    assert times == sorted(times)


def test_pv_is_zero_at_night_and_peaks_near_solar_noon(registry: Registry) -> None:
    day = date(2026, 6, 21)
    start = local_midnight(day)
    truth = ground_truth(registry, start=start, end=start + timedelta(days=1))
    pv = truth.intervals["E04-PV-1"]
    assert len(pv) == 96
    by_local = {t0.astimezone(TZ).strftime("%H:%M"): q for t0, _t1, q in pv}
    night = [q for hhmm, q in by_local.items() if hhmm < "06:00" or hhmm >= "23:00"]
    assert night and all(q == 0 for q in night)
    peak = max(by_local, key=by_local.__getitem__)
    # Kuqa's solar noon is ~14:25 Beijing time (82.96°E, 2.5 h behind the clock)
    assert "13:45" <= peak <= "15:00", peak
    # at solar noon on the June solstice the sun stands 90 - 41.68 + 23.44 = 71.8° high
    noon = max((start + timedelta(minutes=m) for m in range(0, 1440, 5)),
               key=lambda t: solar_elevation_deg(t, 41.68, 82.96))
    assert solar_elevation_deg(noon, 41.68, 82.96) == pytest.approx(71.8, abs=0.5)


def test_heating_season_and_weekly_shapes(registry: Registry) -> None:
    def daily(day: date, days: int = 1) -> dict[tuple[str, date], float]:
        s = local_midnight(day)
        return ground_truth(registry, start=s, end=s + timedelta(days=days)).daily()

    january, july = daily(date(2026, 1, 12)), daily(date(2026, 7, 13))
    assert january[("E10-HEAT-1", date(2026, 1, 12))] > 0
    assert july[("E10-HEAT-1", date(2026, 7, 13))] == 0
    assert january[("E14-GAS-1", date(2026, 1, 12))] > 3 * july[("E14-GAS-1", date(2026, 7, 13))]
    week = daily(date(2026, 1, 12), days=7)  # Monday to Sunday
    monday, sunday = date(2026, 1, 12), date(2026, 1, 18)
    assert week[("E07-ELEC-1", monday)] > 2 * week[("E07-ELEC-1", sunday)]  # equipment
    refinery = week[("E01-ELEC-1", monday)] / week[("E01-ELEC-1", sunday)]
    assert refinery == pytest.approx(1.0, abs=0.03)  # energy_chemical runs 24/7


def test_registers_and_amounts_round_trip_to_truth(registry: Registry) -> None:
    start = local_midnight(date(2026, 3, 2))
    end = start + timedelta(days=1)
    truth = ground_truth(registry, start=start, end=end)
    values: dict[str, list[float]] = defaultdict(list)
    for msg in generate(registry, start=start, end=end):
        assert msg.kind == "reading"
        body = json.loads(msg.payload)
        meter = registry.meter(msg.meter_id or "")
        assert body["unit"] == meter.unit
        assert datetime.fromisoformat(body["ts"]).utcoffset() == timedelta(hours=8)
        values[meter.id].append(body["value"])
    for meter in registry.meters:
        scale = meter.multiplier * meter.unit_factor
        expected = [q for _a, _b, q in truth.intervals[meter.id]]
        if meter.counter is CounterType.cumulative:
            regs = values[meter.id]
            assert regs[0] > 0  # a realistic register, not zero
            got = [(b - a) * scale for a, b in itertools.pairwise(regs)]
        else:
            got = [v * scale for v in values[meter.id]]
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6), meter.id
    assert truth.total("E01-ELEC-1") > 1e6  # a 2,600-mu refinery uses > 1 GWh a day


def test_every_fault_shows_up(registry: Registry) -> None:
    start = local_midnight(date(2026, 1, 20))
    end = start + timedelta(days=2)
    msgs = list(generate(registry, start=start, end=end, faults=FAULTS, seed=3))
    by_fault = Counter(m.fault for m in msgs)
    assert by_fault["garbage"] == 5 and by_fault["late"] == 1
    assert by_fault["out_of_order"] == 1 and by_fault["duplicate"] > 0
    late = next(m for m in msgs if m.fault == "late")
    newest = max(datetime.fromisoformat(r["ts"]) for r in readings_of(late))
    assert late.sim_time >= newest + timedelta(hours=6)
    shuffled = [datetime.fromisoformat(r["ts"])
                for r in readings_of(next(m for m in msgs if m.fault == "out_of_order"))]
    assert shuffled != sorted(shuffled)
    series: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for m in msgs:
        if m.kind != "garbage" and m.fault != "duplicate":
            series[m.meter_id or ""] += [(datetime.fromisoformat(r["ts"]), r["value"])
                                         for r in readings_of(m)]
    drops, spacing = {}, {}
    for meter_id, rows in series.items():
        rows.sort()
        drops[meter_id] = any(b[1] < a[1] for a, b in itertools.pairwise(rows))
        spacing[meter_id] = max(b[0] - a[0] for a, b in itertools.pairwise(rows))
    rollover = {m.id for m in registry.meters if m.rollover is not None}
    assert all(drops[m] for m in rollover)  # every declared rollover wraps
    assert any(drops[m] for m in series if m not in rollover)  # the undeclared reset
    assert any(s >= timedelta(hours=6) for s in spacing.values())  # the gap
    clean = list(generate(registry, start=start, end=end, seed=3))
    assert not any(m.fault for m in clean)


def test_bad_arguments_are_user_errors(registry: Registry) -> None:
    start = local_midnight(date(2026, 1, 1))
    with pytest.raises(SimulatorError, match="unknown fault"):
        list(generate(registry, start=start, end=start + timedelta(hours=1), faults=["fire"]))
    with pytest.raises(SimulatorError, match="not after"):
        list(generate(registry, start=start, end=start))


def store_like_ingest(conn: psycopg.Connection, registry: Registry, msgs: list[SimMessage],
                      batches: int) -> None:
    """Store readings as ingest would (canonical unit, received at sim_time), deriving
    usage several times along the way, as the scheduler would."""
    step = max(1, len(msgs) // batches)
    for i in range(0, len(msgs), step):
        rows = []
        for m in msgs[i:i + step]:
            if m.kind == "garbage":
                continue
            factor = registry.meter(m.meter_id or "").unit_factor
            rows += [(m.meter_id, datetime.fromisoformat(r["ts"]), r["value"] * factor,
                      m.sim_time) for r in readings_of(m)]
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO readings (meter_id, ts, value, received_at) "
                            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)
        derive_usage(conn)


def assert_daily_usage_matches(conn: psycopg.Connection, truth_daily: dict,
                               skip: set[str]) -> int:
    got = {(m, d.astimezone(TZ).date()): q for m, d, q in conn.execute(
        "SELECT meter_id, bucket, quantity FROM usage_daily").fetchall()}
    checked = 0
    for key, expected in truth_daily.items():
        if key[0] in skip:
            continue
        assert got.get(key, 0.0) == pytest.approx(expected, rel=1e-6, abs=1e-6), key
        checked += 1
    return checked


def test_simulated_faults_derive_to_the_intended_usage(migrated_dsn: str,
                                                       registry: Registry) -> None:
    start = local_midnight(date(2026, 1, 20))
    end = start + timedelta(days=2)
    msgs = list(generate(registry, start=start, end=end, faults=FAULTS, seed=1))
    truth = ground_truth(registry, start=start, end=end, faults=FAULTS, seed=1)
    with connect(migrated_dsn) as conn:
        store_like_ingest(conn, registry, msgs, batches=6)
        kinds = dict(conn.execute(
            "SELECT kind, count(*) FROM meter_events GROUP BY kind").fetchall())
        reset_meter = conn.execute(
            "SELECT meter_id FROM meter_events WHERE kind = 'reset'").fetchone()[0]
        # every meter but the one with the undeclared reset: exactly the intended usage
        checked = assert_daily_usage_matches(conn, truth.daily(), skip={reset_meter})
        # the reset interval is estimated from its neighbours: close, and marked
        derived = conn.execute("SELECT sum(quantity), bool_or(estimated) FROM usage "
                               "WHERE meter_id = %s", (reset_meter,)).fetchone()
    assert checked == 51 * 2
    assert kinds == {"rollover": 4, "gap": 1, "reset": 1}
    assert derived[0] == pytest.approx(truth.total(reset_meter), rel=0.01)
    assert derived[1] is True


def test_simulate_to_real_broker_reaches_a_subscriber(broker: Broker,
                                                      registry: Registry) -> None:
    start = local_midnight(date(2026, 1, 20))
    msgs = list(generate(registry, start=start, end=start + timedelta(hours=3),
                         faults=("duplicate", "garbage", "out_of_order"), seed=2))
    received: list[tuple[str, bytes]] = []
    subscribed, lock = threading.Event(), threading.Lock()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:6]}")
    sub.username_pw_set(broker.username, broker.password)

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with lock:
            received.append((message.topic, message.payload))

    sub.on_message = on_message
    sub.on_subscribe = lambda *_args: subscribed.set()
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("park/#", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        stats = publish(msgs, broker.settings())
        deadline = time.monotonic() + 20
        while len(received) < len(msgs) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert stats.messages == len(msgs) and stats.by_kind["garbage"] == 5
    assert Counter(received) == Counter((f"park/{m.topic}", m.payload) for m in msgs)


def test_simulate_ingest_derive_end_to_end(migrated_dsn: str, broker: Broker,
                                           registry: Registry) -> None:
    from parkcarbon.ingest.service import IngestService, flush_and_wait_idle
    from parkcarbon.settings import Settings

    today = datetime.now(TZ).date()
    start = local_midnight(today - timedelta(days=3))
    end = start + timedelta(days=1)
    faults = ("rollover", "duplicate", "late", "out_of_order", "garbage")
    msgs = list(generate(registry, start=start, end=end, faults=faults, seed=7))
    truth = ground_truth(registry, start=start, end=end, faults=faults, seed=7)
    settings = Settings(database_url=migrated_dsn, mqtt_port=broker.port,  # type: ignore[arg-type]
                        mqtt_username=broker.username, mqtt_password=broker.password,
                        metrics_port=None, mqtt_client_id=f"e2e-{uuid.uuid4().hex[:6]}")
    service = IngestService(settings, registry)
    service.start()
    try:
        assert service.wait_subscribed(10)
        publish(msgs, settings)
        assert flush_and_wait_idle(service, min_messages=len(msgs), timeout_seconds=60)
        stats = service.stats()
    finally:
        service.stop(timeout_seconds=10)
    assert stats.dead_letters == 5  # the garbage
    with connect(migrated_dsn) as conn:
        result = derive_usage(conn)
        assert result.events_by_kind == {"rollover": 4}
        assert assert_daily_usage_matches(conn, truth.daily(), skip=set()) == 52


def test_cli_dry_run_and_publish(broker: Broker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from parkcarbon.cli import cli

    runner = CliRunner()
    dry = runner.invoke(cli, ["simulate", "--start", "2026-01-05", "--days", "1", "--dry-run",
                              "--faults", "all", "--json"])
    assert dry.exit_code == 0, dry.output
    summary = json.loads(dry.stdout)
    assert summary["published"] is False and summary["by_kind"]["garbage"] == 5
    dry_csv = runner.invoke(cli, ["simulate", "--start", "2026-01-05", "--days", "1",
                                  "--dry-run", "--format", "csv"])
    assert dry_csv.exit_code == 0, dry_csv.output
    assert dry_csv.stdout.splitlines()[0] == "key,value"
    assert "published,False" in dry_csv.stdout.splitlines()
    env = {"PARKCARBON_MQTT_PORT": str(broker.port), "PARKCARBON_MQTT_USERNAME": broker.username,
           "PARKCARBON_MQTT_PASSWORD": broker.password}
    sent = runner.invoke(cli, ["simulate", "--start", "2026-01-05", "--end", "2026-01-06",
                               "--step", "3600"], env=env)
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.startswith("published ")
    bad = runner.invoke(cli, ["simulate", "--days", "1"],
                        env={**env, "PARKCARBON_MQTT_PASSWORD": "wrong"})
    assert bad.exit_code != 0
    assert "refused" in str(bad.exception)
