"""Message models of the ingest pipeline.

The payload contract (what a meter publishes) is written down as strict, frozen
pydantic models: ``ReadingPayload`` and ``BatchPayload``. The hot path
(``parkcarbon.ingest.parse``) checks the same rules by hand, because it must tell
*which* rule failed (a reason code per reading) and run at >100,000 readings/s;
``tests/ingest/test_parse.py`` checks both agree on examples.

What parse produces are small frozen records (``NamedTuple``: immutable and cheap):
``Reading`` (accepted, canonical unit, UTC microseconds) and ``Rejection``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt


class ReasonCode(StrEnum):
    """Why a message or a reading was dead-lettered (``dead_letters.reason_code``)."""

    payload_too_large = "payload_too_large"
    bad_encoding = "bad_encoding"
    bad_json = "bad_json"
    bad_payload = "bad_payload"
    bad_topic = "bad_topic"
    unknown_enterprise = "unknown_enterprise"
    unknown_meter = "unknown_meter"
    wrong_enterprise = "wrong_enterprise"
    bad_unit = "bad_unit"
    unit_mismatch = "unit_mismatch"
    bad_value = "bad_value"
    negative_value = "negative_value"
    absurd_value = "absurd_value"
    bad_timestamp = "bad_timestamp"
    future_timestamp = "future_timestamp"
    stale_timestamp = "stale_timestamp"
    conflicting_value = "conflicting_value"  # same meter and ts stored with another value
    storage_rejected = "storage_rejected"  # the database refused it (should not happen)
    internal_error = "internal_error"  # a bug in ingest's parser (should not happen)


class ReadingPayload(BaseModel):
    """One reading as a meter publishes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ts: str | StrictInt | StrictFloat = Field(
        description="ISO 8601 with a UTC offset, or epoch seconds, or epoch milliseconds"
    )
    value: StrictInt | StrictFloat = Field(
        description="Register value (cumulative meters) or amount since the previous "
        "reading (interval meters), in `unit`"
    )
    unit: str | None = Field(
        None, description="Unit of value; the meter's declared unit if omitted"
    )
    seq: StrictInt | None = Field(None, ge=0, description="Sender's sequence number")
    quality: str | None = Field(None, max_length=32, description="Sender's quality flag")


class BatchPayload(BaseModel):
    """Several readings of the same meter in one message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    readings: tuple[ReadingPayload, ...] = Field(min_length=1)


class Reading(NamedTuple):
    """An accepted reading: canonical unit before the multiplier, UTC epoch microseconds."""

    meter_id: str
    ts_us: int
    value: float
    seq: int | None
    quality: str | None


class Rejection(NamedTuple):
    """A dead letter to store. ``payload`` is the whole message for a message-level
    problem, or the one rejected reading (re-encoded as a single-reading message)."""

    reason_code: ReasonCode
    reason: str
    payload: bytes
    enterprise_id: str | None = None
    meter_id: str | None = None
    reading_index: int | None = None


class ParseResult(NamedTuple):
    readings: list[Reading]
    rejections: list[Rejection]
