-- Ingest: lookups used by `parkcarbon deadletters list --reason` and the dead-letter
-- counts per reason (Grafana). Same in both storage modes.
CREATE INDEX dead_letters_open_reason_idx ON dead_letters (reason_code, id)
    WHERE replayed_at IS NULL;
CREATE INDEX dead_letters_meter_idx ON dead_letters (meter_id, received_at);
