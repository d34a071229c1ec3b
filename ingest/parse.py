"""Bytes and topic in, accepted readings and reasoned rejections out (the hot path).

``Parser(registry, ...).parse(topic, payload)`` never raises for bad input: every
problem becomes a ``Rejection`` with a ``ReasonCode`` and a sentence naming the
field and value. A batch keeps its good readings. Registry lookups, unit factors
and plausibility bounds are computed once per meter and unit and cached.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from parkcarbon.errors import UnitError
from parkcarbon.ingest import constants as C
from parkcarbon.ingest.models import ParseResult, Reading, ReasonCode, Rejection
from parkcarbon.registry import CounterType, Registry
from parkcarbon.units import Carrier, canonical_factor

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_READING_KEYS = frozenset({"ts", "value", "unit", "seq", "quality"})
_MAX_QUALITY_CHARS = 32
_MAX_SEQ = 2**63 - 1  # bigint column
_SHOWN_CHARS = 60  # how much of a bad value a reason quotes
_INF = math.inf
_MAX_EXACT_INT = 2**53  # larger JSON integers take the careful path (float conversion)
# Reading(...) runs a generated __new__ in Python; tuple.__new__ builds the same
# NamedTuple in half the time (the hot path builds one per reading).
_new_reading = tuple.__new__
_FastReader = Callable[[Any, int], "Reading | None"]


class _MeterInfo(NamedTuple):
    enterprise: str
    carrier: Carrier
    carrier_key: str  # carrier.value: a plain str hashes faster than the enum
    register: bool  # cumulative register (else interval amount)
    unit: str
    max_canonical: float  # largest plausible value, canonical unit, before multiplier
    rollover_canonical: float | None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _meter_infos(registry: Registry) -> dict[str, _MeterInfo]:
    infos = {}
    for m in registry.meters:
        hours = C.MAX_REGISTER_HOURS if m.counter is CounterType.cumulative else (
            C.MAX_INTERVAL_HOURS
        )
        rollover = None if m.rollover is None else m.rollover * m.unit_factor
        infos[m.id] = _MeterInfo(
            enterprise=m.enterprise,
            carrier=m.carrier,
            carrier_key=m.carrier.value,
            register=m.counter is CounterType.cumulative,
            unit=m.unit,
            max_canonical=C.MAX_FLOW_PER_HOUR[m.carrier] * hours / m.multiplier,
            rollover_canonical=rollover,
        )
    return infos


class Parser:
    """Parses meter messages against one registry snapshot. Thread-compatible (no
    shared mutable state except caches filled idempotently)."""

    def __init__(
        self,
        registry: Registry,
        *,
        topic_prefix: str = "park",
        max_payload_bytes: int = 262_144,
        future_tolerance_seconds: float = 300.0,
        past_horizon_days: float = 400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._meters = _meter_infos(registry)
        self._enterprises = frozenset(e.id for e in registry.enterprises)
        self._prefix = topic_prefix.strip("/")
        self._max_bytes = max_payload_bytes
        self._future_us = int(future_tolerance_seconds * 1e6)
        self._past_us = int(past_horizon_days * 86400 * 1e6)
        self._clock = clock
        # carrier -> unit -> factor, or the UnitError for a unit that cannot serve
        self._unit_factors: dict[str, dict[str, float | UnitError]] = {}
        # topic -> (enterprise, meter, info, fast reader) for topics that passed the
        # checks; bounded by the registry (only registered meter topics get in).
        self._topics: dict[str, tuple[str, str, _MeterInfo, _FastReader]] = {}

    @classmethod
    def from_settings(cls, registry: Registry, settings: Any) -> Parser:
        return cls(
            registry,
            topic_prefix=settings.topic_prefix,
            max_payload_bytes=settings.max_payload_bytes,
            future_tolerance_seconds=settings.future_tolerance_seconds,
            past_horizon_days=settings.past_horizon_days,
        )

    # --- message level -----------------------------------------------------------

    def parse(self, topic: str, payload: bytes) -> ParseResult:
        """Parse one MQTT message. Never raises for bad input."""
        reject = self._reject
        if len(payload) > self._max_bytes:
            keep = payload[: C.DEAD_LETTER_PAYLOAD_KEEP_BYTES]
            return reject(keep, ReasonCode.payload_too_large,
                          f"payload is {len(payload)} bytes, the limit is {self._max_bytes} "
                          f"(first {len(keep)} bytes kept)")
        known = self._topics.get(topic)
        if known is None:
            levels = topic.split("/")
            if len(levels) != 3 or levels[0] != self._prefix or not levels[1] or not levels[2]:
                return reject(payload, ReasonCode.bad_topic,
                              f"topic {topic!r} is not {self._prefix}/<enterprise_id>/<meter_id>")
            ent_id, meter_id = levels[1], levels[2]
            found = self._meters.get(meter_id)
            if ent_id not in self._enterprises:
                return reject(payload, ReasonCode.unknown_enterprise,
                              f"enterprise {ent_id!r} is not in the registry", ent_id, meter_id)
            if found is None:
                return reject(payload, ReasonCode.unknown_meter,
                              f"meter {meter_id!r} is not in the registry", ent_id, meter_id)
            if found.enterprise != ent_id:
                return reject(payload, ReasonCode.wrong_enterprise,
                              f"meter {meter_id!r} belongs to enterprise {found.enterprise!r}, "
                              f"not {ent_id!r}", ent_id, meter_id)
            known = self._topics[topic] = (
                ent_id, meter_id, found, self._fast_reader(meter_id, found))
        ent_id, meter_id, info, fast = known
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            # Slow path, only for bad input: tell encoding from syntax, and let the
            # stdlib accept NaN/Infinity so a non-finite value gets its own reason.
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                return reject(payload, ReasonCode.bad_encoding,
                              f"payload is not UTF-8 (byte {exc.start})", ent_id, meter_id)
            try:
                doc = json.loads(text)
            except ValueError as exc:
                return reject(payload, ReasonCode.bad_json, f"payload is not JSON: {exc}",
                              ent_id, meter_id)
        if not isinstance(doc, dict):
            return reject(payload, ReasonCode.bad_payload,
                          f"payload must be a JSON object, got {type(doc).__name__}",
                          ent_id, meter_id)
        now_us = int(self._clock() * 1e6)
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        if "readings" in doc:
            items = doc["readings"]
            if len(doc) != 1:
                extra = sorted(k for k in doc if k != "readings")
                return reject(payload, ReasonCode.bad_payload,
                              f"a batch has only 'readings', unexpected {extra}",
                              ent_id, meter_id)
            if not isinstance(items, list) or not items:
                return reject(payload, ReasonCode.bad_payload,
                              "'readings' must be a non-empty list", ent_id, meter_id)
            for index, item in enumerate(items):
                outcome = fast(item, now_us) or self._reading(item, meter_id, info, now_us)
                if isinstance(outcome, Reading):
                    readings.append(outcome)
                else:
                    body = json.dumps(item, ensure_ascii=False).encode()
                    rejections.append(
                        Rejection(outcome[0], f"readings[{index}]: {outcome[1]}", body,
                                  ent_id, meter_id, index)
                    )
            return ParseResult(readings, rejections)
        outcome = fast(doc, now_us) or self._reading(doc, meter_id, info, now_us)
        if isinstance(outcome, Reading):
            return ParseResult([outcome], [])
        return reject(payload, outcome[0], outcome[1], ent_id, meter_id)

    @staticmethod
    def _reject(payload: bytes, code: ReasonCode, reason: str, ent: str | None = None,
                meter: str | None = None) -> ParseResult:
        return ParseResult([], [Rejection(code, reason, payload, ent, meter, None)])

    # --- reading level -----------------------------------------------------------

    def _fast_reader(self, meter_id: str, info: _MeterInfo) -> _FastReader:
        """The fast path for one meter's readings (built once per topic): accepts the
        common, valid reading with the fewest checks that prove it valid, everything it
        needs bound in a closure (a batch of 100 readings parses ~2x faster than through
        ``_reading``). Anything unusual gives None and ``_reading`` decides, with the
        precise reason if it is bad; both give the same Reading for the same valid
        input (tested)."""
        factors = self._unit_factors.setdefault(info.carrier_key, {})
        default_unit = info.unit
        top = info.max_canonical
        if info.rollover_canonical is not None:
            top = min(top, info.rollover_canonical)
        past_us, future_us = self._past_us, self._future_us
        ms_from = C.EPOCH_MS_THRESHOLD
        inf, max_seq, max_exact = _INF, _MAX_SEQ, _MAX_EXACT_INT
        new, reading = _new_reading, Reading
        fromisoformat, epoch, one_us = datetime.fromisoformat, _EPOCH, _ONE_US

        def fast(item: Any, now_us: int) -> Reading | None:
            if type(item) is not dict:
                return None
            ts: Any = item.get("ts")
            value: Any = item.get("value")  # a missing one fails the type check below
            unit: Any = item.get("unit")
            seq: Any = item.get("seq")
            if len(item) != 2 + (unit is not None) + (seq is not None) or ts is None:
                return None  # other keys (quality, unknown, explicit nulls) or missing ones
            if unit is None:
                factor = factors.get(default_unit)
            elif type(unit) is str:
                factor = factors.get(unit)
            else:
                return None
            if type(factor) is not float:
                return None  # unit not seen yet, or one that cannot serve
            kind = type(value)
            if kind is float:
                if not 0 <= value < inf:
                    return None
            elif kind is not int or not 0 <= value <= max_exact:
                return None
            canonical = value * factor
            if canonical > top:
                return None
            kind = type(ts)
            if kind is int:
                ts_us = ts * 1000 if ts >= ms_from else ts * 1_000_000
            elif kind is str:
                try:
                    dt = fromisoformat(ts)
                except ValueError:
                    return None
                if dt.tzinfo is None or dt.utcoffset() is None:
                    return None
                ts_us = (dt - epoch) // one_us
            else:
                return None  # floats take the careful path (rounding, non-finite)
            if not now_us - past_us <= ts_us <= now_us + future_us:
                return None
            if seq is not None and (type(seq) is not int or not 0 <= seq <= max_seq):
                return None
            return new(reading, (meter_id, ts_us, canonical, seq, None))

        return fast

    def _reading(
        self, item: Any, meter_id: str, info: _MeterInfo, now_us: int
    ) -> Reading | tuple[ReasonCode, str]:
        if not isinstance(item, dict):
            return ReasonCode.bad_payload, f"a reading must be an object, got {_show(item)}"
        if not item.keys() <= _READING_KEYS:
            extra = sorted(set(item) - _READING_KEYS)
            return ReasonCode.bad_payload, f"unexpected field(s) {extra}"
        if "ts" not in item or "value" not in item:
            missing = [k for k in ("ts", "value") if k not in item]
            return ReasonCode.bad_payload, f"missing field(s) {missing}"
        # unit
        unit = item.get("unit")
        if unit is None:
            unit = info.unit
        elif not isinstance(unit, str):
            return ReasonCode.bad_unit, f"unit must be a string, got {_show(unit)}"
        known_units = self._unit_factors.setdefault(info.carrier_key, {})
        factor = known_units.get(unit)
        if factor is None:
            try:
                factor = canonical_factor(unit, info.carrier)
            except UnitError as exc:
                factor = exc
            known_units[unit] = factor
        if isinstance(factor, UnitError):
            code = ReasonCode.unit_mismatch if "cannot measure" in str(factor) else (
                ReasonCode.bad_unit
            )
            return code, str(factor)
        # value
        value = item["value"]
        if type(value) is not float and type(value) is not int:
            return ReasonCode.bad_value, f"value must be a JSON number, got {_show(value)}"
        if type(value) is int and value.bit_length() > 1000:  # beyond any float
            return ReasonCode.absurd_value, f"value {_show(value)} is beyond any meter's range"
        if not math.isfinite(value):
            return ReasonCode.bad_value, f"value {value!r} is not finite"
        if value < 0:
            kind = "register" if info.register else "interval amount"
            return ReasonCode.negative_value, f"value {value!r} is negative (a {kind})"
        canonical = value * factor
        if canonical > info.max_canonical:
            return ReasonCode.absurd_value, (
                f"value {value!r} {unit} is beyond the plausible maximum for this "
                f"{info.carrier.value} meter ({info.max_canonical:.6g} in canonical unit)"
            )
        if info.rollover_canonical is not None and canonical > info.rollover_canonical:
            return ReasonCode.absurd_value, (
                f"value {value!r} {unit} exceeds the meter's rollover value"
            )
        # timestamp
        ts = item["ts"]
        if type(ts) is str:
            try:
                dt = datetime.fromisoformat(ts)
            except ValueError:
                return ReasonCode.bad_timestamp, f"ts {_show(ts)} is not ISO 8601"
            if dt.tzinfo is None or dt.utcoffset() is None:
                return ReasonCode.bad_timestamp, f"ts {_show(ts)} has no UTC offset"
            ts_us = (dt - _EPOCH) // _ONE_US
        elif type(ts) is int or type(ts) is float:
            if not math.isfinite(ts):
                return ReasonCode.bad_timestamp, f"ts {ts!r} is not finite"
            ts_us = round(ts * 1000) if abs(ts) >= C.EPOCH_MS_THRESHOLD else round(ts * 1e6)
        else:
            return ReasonCode.bad_timestamp, (
                f"ts must be ISO 8601 text or epoch seconds/milliseconds, got {_show(ts)}"
            )
        if ts_us > now_us + self._future_us:
            ahead = (ts_us - now_us) / 1e6
            return ReasonCode.future_timestamp, f"ts {_show(ts)} is {ahead:.0f} s in the future"
        if ts_us < now_us - self._past_us:
            age_days = (now_us - ts_us) / 86400e6
            return ReasonCode.stale_timestamp, (
                f"ts {_show(ts)} is {age_days:.1f} days old, beyond the horizon"
            )
        # seq, quality
        seq = item.get("seq")
        if seq is not None and (type(seq) is not int or not 0 <= seq <= _MAX_SEQ):
            return ReasonCode.bad_payload, f"seq must be a non-negative integer, got {_show(seq)}"
        quality = item.get("quality")
        if quality is not None and (
            type(quality) is not str or len(quality) > _MAX_QUALITY_CHARS or "\x00" in quality
        ):
            return ReasonCode.bad_payload, (
                f"quality must be text of at most {_MAX_QUALITY_CHARS} chars, got {_show(quality)}"
            )
        return Reading(meter_id, ts_us, float(canonical), seq, quality)
