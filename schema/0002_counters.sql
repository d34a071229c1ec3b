-- Counter derivation: events noticed while turning readings into usage, and the
-- per-meter state that makes `derive_usage` incremental. Same in both storage modes.

-- One row per thing derivation noticed in one meter's readings. ts is the end of the
-- interval concerned (the reading that closed it); ts_start its start.
-- kinds: gap, reset (unexplained drop), absurd (implausible jump), rollover,
-- replacement, replacement_mismatch, negative, duplicate, conflict.
-- Rows are kept in step with the readings: a recomputation updates or removes them;
-- first_seen_at survives recomputation, updated_at tells what changed when.
CREATE TABLE meter_events (
    meter_id       text NOT NULL,
    kind           text NOT NULL,
    ts             timestamptz NOT NULL,
    ts_start       timestamptz,
    value_before   double precision,                 -- register, canonical unit
    value_after    double precision,
    quantity       double precision,                 -- usage given to the interval, after multiplier
    detail         jsonb NOT NULL DEFAULT '{}',
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, kind, ts)
);
CREATE INDEX meter_events_ts_idx ON meter_events (ts);
CREATE INDEX meter_events_kind_idx ON meter_events (kind, ts);

-- Incremental derivation state per meter.
-- watermark: largest readings.received_at the last run could see; overlap_count: the
-- meter's readings received in the 10 minutes up to it (if that grows, a writer
-- transaction committed late and the meter is recomputed from there). spec_hash:
-- multiplier, rollover, interval, counter type and declared replacements; when it
-- changes the meter is re-derived in full.
CREATE TABLE usage_derive_state (
    meter_id        text PRIMARY KEY,
    watermark       timestamptz,
    overlap_count   integer NOT NULL DEFAULT 0,
    spec_hash       text NOT NULL,
    derived_at      timestamptz NOT NULL DEFAULT now()
);

-- What changed in usage, run by run: the carbon module restates these periods.
CREATE TABLE usage_changes (
    id            bigserial PRIMARY KEY,
    meter_id      text NOT NULL,
    first_slot    timestamptz NOT NULL,
    last_slot     timestamptz NOT NULL,              -- inclusive slot start
    slots         integer NOT NULL,
    changed_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_changes_changed_idx ON usage_changes (changed_at);

-- Incremental derivation finds readings that arrived since its last run.
CREATE INDEX readings_received_idx ON readings (received_at);
