-- Alerts (parkcarbon.alerts): one durable instance per (rule, subject), its history,
-- silences, notification groups, the outbox and every delivery attempt. Same in both
-- storage modes. enterprise_id NULL: a park-level row (row-level security, #12).

-- One row per rule and subject (a meter, an enterprise or the park), kept for ever:
-- state normal | pending | firing | recovering | nodata | error. episode counts the
-- times it became active; ack_* belongs to the current episode.
CREATE TABLE alert_instances (
    id                bigserial PRIMARY KEY,
    rule_id           text NOT NULL,
    subject           text NOT NULL,             -- meter id, enterprise id or PARK
    enterprise_id     text,
    meter_id          text,
    kind              text NOT NULL,
    severity          text NOT NULL,
    state             text NOT NULL CHECK (state IN
                        ('normal', 'pending', 'firing', 'recovering', 'nodata', 'error')),
    value             double precision,          -- last evaluated value
    threshold         double precision,
    pending_since     timestamptz,
    active_since      timestamptz,               -- start of the current episode
    recovering_since  timestamptz,
    resolved_at       timestamptz,
    episode           integer NOT NULL DEFAULT 0,
    last_eval_at      timestamptz,
    ack_by            text,
    ack_until         timestamptz,
    ack_comment       text,
    detail            jsonb NOT NULL DEFAULT '{}',
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (rule_id, subject)
);
CREATE INDEX alert_instances_state_idx ON alert_instances (state) WHERE state <> 'normal';

-- Every state change.
CREATE TABLE alert_history (
    id             bigserial PRIMARY KEY,
    instance_id    bigint NOT NULL REFERENCES alert_instances (id),
    enterprise_id  text,
    at             timestamptz NOT NULL,
    from_state     text NOT NULL,
    to_state       text NOT NULL,
    value          double precision,
    note           text
);
CREATE INDEX alert_history_instance_idx ON alert_history (instance_id, at);
CREATE INDEX alert_history_at_idx ON alert_history (at);

CREATE TABLE alert_silences (
    id             bigserial PRIMARY KEY,
    enterprise_id  text,                          -- set when the matchers pin one enterprise
    matchers       jsonb NOT NULL,                -- [{"label", "op", "value"}]
    starts_at      timestamptz NOT NULL,
    ends_at        timestamptz NOT NULL,
    author         text NOT NULL,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expired_at     timestamptz,
    CHECK (ends_at > starts_at)
);

-- One notification group per recipient and group key: what was last notified.
CREATE TABLE alert_groups (
    group_key      text PRIMARY KEY,
    recipient      text NOT NULL,
    enterprise_id  text,
    created_at     timestamptz NOT NULL,
    first_due_at   timestamptz,                   -- group_wait ends
    last_sent_at   timestamptz,
    notified       jsonb NOT NULL DEFAULT '{}'    -- fingerprint -> episode, last sent active
);

-- The outbox: one row per message and channel. dedup_key makes enqueueing idempotent.
CREATE TABLE alert_outbox (
    id               bigserial PRIMARY KEY,
    dedup_key        text NOT NULL UNIQUE,
    group_key        text NOT NULL,
    recipient        text NOT NULL,
    channel          text NOT NULL,
    enterprise_id    text,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN
                       ('pending', 'sent', 'failed')),
    reason           text NOT NULL,               -- new | resolved | repeat | escalation | test
    message          jsonb NOT NULL,              -- the notification, rendered per channel
    created_at       timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    sent_at          timestamptz,
    last_error       text
);
CREATE INDEX alert_outbox_due_idx ON alert_outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE alert_delivery_attempts (
    id             bigserial PRIMARY KEY,
    outbox_id      bigint NOT NULL REFERENCES alert_outbox (id),
    enterprise_id  text,
    channel        text NOT NULL,
    at             timestamptz NOT NULL,
    ok             boolean NOT NULL,
    detail         text NOT NULL,                 -- HTTP status, provider errcode, SMTP reply
    duration_ms    double precision NOT NULL,
    worker         text NOT NULL
);
CREATE INDEX alert_delivery_attempts_outbox_idx ON alert_delivery_attempts (outbox_id);
CREATE INDEX alert_delivery_attempts_channel_idx ON alert_delivery_attempts (channel, at);
