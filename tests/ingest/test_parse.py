"""The payload contract: topic, JSON, units, timestamps and every rejection reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from parkcarbon.ingest.models import BatchPayload, ReadingPayload, ReasonCode
from parkcarbon.ingest.parse import Parser
from parkcarbon.registry import load_registry
from support import EXAMPLE_REGISTRY

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
NOW_US = int(NOW_S * 1_000_000)


@pytest.fixture(scope="module")
def parser() -> Parser:
    return Parser(load_registry(EXAMPLE_REGISTRY), clock=lambda: NOW_S, max_payload_bytes=2048)


def msg(**reading: object) -> bytes:
    return json.dumps(reading, ensure_ascii=False).encode()


def one_code(parser: Parser, payload: bytes, topic: str = "park/E01/E01-ELEC-1") -> str:
    result = parser.parse(topic, payload)
    assert result.readings == []
    assert len(result.rejections) == 1, result.rejections
    return result.rejections[0].reason_code.value


def test_single_reading_iso_with_offset(parser: Parser) -> None:
    res = parser.parse("park/E01/E01-ELEC-1",
                       msg(ts="2026-06-01T19:00:00+08:00", value=1234.5, unit="kWh", seq=7,
                           quality="good"))
    assert res.rejections == []
    (r,) = res.readings
    assert r.meter_id == "E01-ELEC-1"
    assert r.ts_us == int(datetime(2026, 6, 1, 11, 0, tzinfo=UTC).timestamp()) * 1_000_000
    assert r.value == 1234.5 and r.seq == 7 and r.quality == "good"


@pytest.mark.parametrize(
    ("ts", "expected_us"),
    [
        ("2026-06-01T11:30:00Z", NOW_US - 1800 * 10**6),
        ("2026-06-01T11:30:00.250+00:00", NOW_US - 1800 * 10**6 + 250_000),
        (NOW_S - 60, NOW_US - 60 * 10**6),  # epoch seconds
        (int(NOW_S) - 60, NOW_US - 60 * 10**6),
        (int(NOW_S * 1000) - 60_000, NOW_US - 60 * 10**6),  # epoch milliseconds
    ],
)
def test_timestamp_forms(parser: Parser, ts: object, expected_us: int) -> None:
    (r,) = parser.parse("park/E01/E01-ELEC-1", msg(ts=ts, value=1.0)).readings
    assert r.ts_us == expected_us


@pytest.mark.parametrize(
    ("topic", "unit", "value", "canonical"),
    [
        ("park/E01/E01-ELEC-1", "MWh", 2.5, 2500.0),
        ("park/E01/E01-ELEC-1", "万kWh", 3, 30_000.0),
        ("park/E01/E01-ELEC-1", "度", 5, 5.0),
        ("park/E01/E01-ELEC-1", "千瓦时", 5, 5.0),
        ("park/E01/E01-GAS-1", "Nm³", 12, 12.0),
        ("park/E01/E01-GAS-1", "万m³", 1.5, 15_000.0),
        ("park/E01/E01-WATER-1", "m³", 8, 8.0),
        ("park/E01/E01-WATER-1", "t", 8, 8.0),
        ("park/E10/E10-HEAT-1", "GJ", 4, 4.0),
        ("park/E10/E10-HEAT-1", "tce", 1, 29.271),
        ("park/E10/E10-HEAT-1", "吨标准煤", 2, 58.542),
        ("park/E06/E06-STEAM-1", "t", 3, 3.0),
        ("park/E09/E09-DIESEL-1", "t", 0.5, 0.5),
        ("park/E09/E09-DIESEL-1", None, 500, 0.5),  # declared unit kg
    ],
)
def test_units_become_canonical(parser: Parser, topic: str, unit: str | None, value: float,
                                canonical: float) -> None:
    reading = {"ts": NOW_S, "value": value} | ({"unit": unit} if unit else {})
    res = parser.parse(topic, json.dumps(reading, ensure_ascii=False).encode())
    assert res.rejections == []
    assert res.readings[0].value == pytest.approx(canonical)


def test_batch_keeps_good_readings(parser: Parser) -> None:
    payload = json.dumps({"readings": [
        {"ts": NOW_S - 900, "value": 10.0},
        {"ts": NOW_S - 600, "value": -1.0},
        {"ts": NOW_S - 300, "value": 12.0, "unit": "m³"},
        {"ts": NOW_S, "value": 13.0},
    ]}).encode()
    res = parser.parse("park/E01/E01-ELEC-1", payload)
    assert [r.value for r in res.readings] == [10.0, 13.0]
    assert [(rj.reason_code, rj.reading_index) for rj in res.rejections] == [
        (ReasonCode.negative_value, 1), (ReasonCode.unit_mismatch, 2)]
    # a rejected reading is kept as a single-reading message, replayable on its own
    assert json.loads(res.rejections[0].payload) == {"ts": NOW_S - 600, "value": -1.0}
    assert res.rejections[0].reason.startswith("readings[1]: ")


@pytest.mark.parametrize(
    ("topic", "payload", "code"),
    [
        ("park/E01/E01-ELEC-1", b"x" * 3000, "payload_too_large"),
        ("park/E01/E01-ELEC-1", b"\xff\xfe{}", "bad_encoding"),
        ("park/E01/E01-ELEC-1", b'{"ts": 1780315200, "value": ', "bad_json"),
        ("park/E01/E01-ELEC-1", b"[1, 2]", "bad_payload"),
        ("park/E01/E01-ELEC-1", b'{"value": 1}', "bad_payload"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=1, colour="red"), "bad_payload"),
        ("park/E01/E01-ELEC-1", b'{"readings": []}', "bad_payload"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=1, seq=-3), "bad_payload"),
        ("other/E01/E01-ELEC-1", msg(ts=NOW_S, value=1), "bad_topic"),
        ("park/E01/E01-ELEC-1/x", msg(ts=NOW_S, value=1), "bad_topic"),
        ("park/E99/E01-ELEC-1", msg(ts=NOW_S, value=1), "unknown_enterprise"),
        ("park/E01/E01-NOPE", msg(ts=NOW_S, value=1), "unknown_meter"),
        ("park/E02/E01-ELEC-1", msg(ts=NOW_S, value=1), "wrong_enterprise"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=1, unit="furlong²"), "bad_unit"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=1, unit="m³"), "unit_mismatch"),
        ("park/E09/E09-DIESEL-1", msg(ts=NOW_S, value=1, unit="L"), "unit_mismatch"),
        ("park/E01/E01-ELEC-1", b'{"ts": 1780315200, "value": NaN}', "bad_value"),
        ("park/E01/E01-ELEC-1", b'{"ts": 1780315200, "value": Infinity}', "bad_value"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value="12.5"), "bad_value"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=True), "bad_value"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=-0.5), "negative_value"),
        ("park/E09/E09-DIESEL-1", msg(ts=NOW_S, value=-2), "negative_value"),  # interval
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=1e12), "absurd_value"),
        ("park/E09/E09-DIESEL-1", msg(ts=NOW_S, value=5000, unit="t"), "absurd_value"),
        ("park/E07/E07-ELEC-1", msg(ts=NOW_S, value=1_000_001), "absurd_value"),  # rollover
        ("park/E01/E01-ELEC-1", msg(ts="2026-06-01 12:00:00", value=1), "bad_timestamp"),
        ("park/E01/E01-ELEC-1", msg(ts="yesterday", value=1), "bad_timestamp"),
        ("park/E01/E01-ELEC-1", msg(ts=[2026, 6, 1], value=1), "bad_timestamp"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S + 301, value=1), "future_timestamp"),
        ("park/E01/E01-ELEC-1", msg(ts=NOW_S - 401 * 86400, value=1), "stale_timestamp"),
    ],
)
def test_every_rejection_has_its_reason(parser: Parser, topic: str, payload: bytes,
                                        code: str) -> None:
    assert one_code(parser, payload, topic) == code


def test_future_tolerance_boundary(parser: Parser) -> None:
    assert parser.parse("park/E01/E01-ELEC-1", msg(ts=NOW_S + 299, value=1)).readings


def test_reasons_name_the_problem(parser: Parser) -> None:
    res = parser.parse("park/E02/E01-ELEC-1", msg(ts=NOW_S, value=1))
    assert res.rejections[0].reason == "meter 'E01-ELEC-1' belongs to enterprise 'E01', not 'E02'"
    assert res.rejections[0].enterprise_id == "E02"
    big = parser.parse("park/E01/E01-ELEC-1", b"x" * 5000).rejections[0]
    assert "5000 bytes" in big.reason and len(big.payload) < 5000


@pytest.mark.parametrize(
    "doc",
    [
        {"ts": "2026-06-01T11:00:00+08:00", "value": 1.5},
        {"ts": 1780315200, "value": 3, "unit": "MWh", "seq": 4, "quality": "good"},
        {"readings": [{"ts": 1780315200000, "value": 2}]},
    ],
)
def test_documented_models_accept_what_the_parser_accepts(parser: Parser, doc: dict) -> None:
    model = BatchPayload if "readings" in doc else ReadingPayload
    model.model_validate(doc)
    assert parser.parse("park/E01/E01-ELEC-1", json.dumps(doc).encode()).rejections == []


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"ts": int(NOW_S) - 60, "value": "1"}, "bad_value"),
        ({"ts": int(NOW_S) - 60, "value": 1, "x": 0}, "bad_payload"),
        ({"readings": []}, "bad_payload"),
    ],
)
def test_documented_models_refuse_what_the_parser_refuses(parser: Parser, doc: dict,
                                                          code: str) -> None:
    """Recent timestamps: the parser refuses these for the rule named, nothing else."""
    model = BatchPayload if "readings" in doc else ReadingPayload
    with pytest.raises(ValidationError):
        model.model_validate(doc)
    assert one_code(parser, json.dumps(doc).encode()) == code


def test_fast_path_agrees_with_the_careful_path(parser: Parser) -> None:
    """The fast path accepts valid readings exactly as the careful path does, and
    leaves everything unusual (including every bad reading) to it."""
    from parkcarbon.ingest.parse import _meter_infos

    info = _meter_infos(load_registry(EXAMPLE_REGISTRY))["E01-ELEC-1"]
    parser.parse("park/E01/E01-ELEC-1", msg(ts=NOW_S, value=1, unit="MWh"))  # cache MWh
    fast_reading = parser._fast_reader("E01-ELEC-1", info)  # what parse() builds per topic
    valid = [
        {"ts": int(NOW_S) - 60, "value": 12.5},
        {"ts": int(NOW_S) - 60, "value": 7, "unit": "kWh", "seq": 3},
        {"ts": int(NOW_S * 1000) - 1, "value": 0.0, "unit": "MWh"},
        {"ts": "2026-06-01T19:00:00+08:00", "value": 1234.5, "unit": "kWh"},
        {"ts": "2026-06-01T11:59:00Z", "value": 3, "seq": 0},
    ]
    for item in valid:
        fast = fast_reading(item, NOW_US)
        careful = parser._reading(item, "E01-ELEC-1", info, NOW_US)
        assert fast is not None and fast == careful, item
        assert type(fast) is type(careful) and fast.ts_us == careful.ts_us  # type: ignore[union-attr]
    unusual = [
        [1, 2], {"ts": NOW_S, "value": 1.5},  # float ts: careful rounding
        {"ts": int(NOW_S), "value": 1, "quality": "good"}, {"ts": int(NOW_S), "value": 1, "x": 1},
        {"ts": int(NOW_S), "value": 1, "unit": None}, {"ts": int(NOW_S)},
        {"ts": int(NOW_S), "value": -1}, {"ts": int(NOW_S), "value": True},
        {"ts": int(NOW_S), "value": 1, "unit": ["kWh"]},
        {"ts": int(NOW_S), "value": 1, "unit": "m3"},
        {"ts": int(NOW_S), "value": 1, "unit": "GWh"}, {"ts": int(NOW_S), "value": 1e12},
        {"ts": int(NOW_S) + 3600, "value": 1}, {"ts": "2026-06-01T11:00:00", "value": 1},
        {"ts": "yesterday", "value": 1}, {"ts": -5, "value": 1},
        {"ts": int(NOW_S), "value": 1, "seq": -1}, {"ts": int(NOW_S), "value": 1, "seq": "7"},
    ]
    for item in unusual:
        assert fast_reading(item, NOW_US) is None, item
