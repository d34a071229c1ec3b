-- parkcarbon core schema: registry, readings, dead letters, derived usage.
-- Applied in both storage modes; 0001_core.timescale.sql or 0001_core.plain.sql
-- follows in the same transaction.

CREATE TABLE park (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    name_zh       text,
    timezone      text NOT NULL,
    land_area_mu  double precision,
    latitude      double precision,
    longitude     double precision,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enterprises (
    id            text PRIMARY KEY,
    name_zh       text NOT NULL,
    name_en       text,
    credit_code   text,
    sector        text NOT NULL,
    land_area_mu  double precision NOT NULL CHECK (land_area_mu > 0),
    contacts      jsonb NOT NULL DEFAULT '[]',
    active        boolean NOT NULL DEFAULT true,     -- false once removed from the registry
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE meters (
    id               text PRIMARY KEY,
    enterprise_id    text NOT NULL REFERENCES enterprises (id),
    carrier          text NOT NULL CHECK (carrier IN
                       ('electricity', 'natural_gas', 'water', 'heat', 'steam', 'diesel', 'coal')),
    role             text NOT NULL CHECK (role IN ('grid_import', 'onsite_pv', 'export', 'sub_meter')),
    counter_type     text NOT NULL CHECK (counter_type IN ('cumulative', 'interval')),
    unit             text NOT NULL,                  -- canonical unit readings are stored in
    reported_unit    text NOT NULL,                  -- unit the meter is declared to report in
    multiplier       double precision NOT NULL DEFAULT 1 CHECK (multiplier > 0),
    rollover_value   double precision CHECK (rollover_value > 0),  -- canonical unit, before multiplier
    interval_seconds integer NOT NULL CHECK (interval_seconds > 0),
    active           boolean NOT NULL DEFAULT true,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meters_enterprise_idx ON meters (enterprise_id);

-- Declared meter swaps. Readings are in the canonical unit, before the multiplier.
CREATE TABLE meter_replacements (
    meter_id         text NOT NULL REFERENCES meters (id),
    replaced_at      timestamptz NOT NULL,
    final_reading    double precision NOT NULL,
    initial_reading  double precision NOT NULL,
    note             text,
    PRIMARY KEY (meter_id, replaced_at)
);

-- Raw readings, one row per meter and measured time (idempotent storage).
-- value: canonical unit of the meter's carrier, before the multiplier (the register
-- as the meter shows it, converted). No foreign key to meters: ingest checks the
-- registry, and a key check per row would slow COPY.
CREATE TABLE readings (
    meter_id     text NOT NULL,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    seq          bigint,
    quality      text,
    PRIMARY KEY (meter_id, ts)
);

-- Everything ingest could not accept, with the reason, so nothing is silently lost.
CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    received_at    timestamptz NOT NULL DEFAULT now(),
    topic          text NOT NULL,
    payload        bytea NOT NULL,
    reason_code    text NOT NULL,
    reason         text NOT NULL,
    enterprise_id  text,
    meter_id       text,
    reading_index  integer,                          -- position in a batch, if any
    replayed_at    timestamptz,
    replay_result  text
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at);
CREATE INDEX dead_letters_open_idx ON dead_letters (id) WHERE replayed_at IS NULL;

-- Usage derived from readings, in 15-minute slots (UTC-aligned; every real timezone
-- offset is a multiple of 15 minutes, so local hours and days are whole slots).
-- quantity: canonical unit, after the multiplier.
CREATE TABLE usage (
    meter_id    text NOT NULL,
    ts          timestamptz NOT NULL,                -- slot start
    quantity    double precision NOT NULL,
    estimated   boolean NOT NULL DEFAULT false,      -- apportioned across a gap
    derived_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, ts)
);
