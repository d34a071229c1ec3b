-- Ingest reliability (#11): what ingest knows about its broker sessions, the incidents
-- it detected (a lost or taken-over session), and the original size of a dead letter's
-- payload when only a prefix of it is kept. Same in both storage modes.

-- One row per (broker, client id) ingest ever held a persistent session with. A restart
-- that finds a row but gets "session present: false" from the broker knows the broker
-- lost the session (and the messages it was queueing) since last_seen_at.
CREATE TABLE ingest_sessions (
    broker          text NOT NULL,                   -- host:port
    client_id       text NOT NULL,
    established_at  timestamptz NOT NULL DEFAULT now(),  -- the broker's session began
    last_seen_at    timestamptz NOT NULL DEFAULT now(),  -- last known to exist
    PRIMARY KEY (broker, client_id)
);

-- What ingest detected that may have lost data upstream of it; park-level (no
-- enterprise), read by operators and by the alerts (kind = session_lost, ...).
CREATE TABLE ingest_incidents (
    id            bigserial PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL,                     -- session_lost | session_taken_over
    broker        text NOT NULL,
    client_id     text NOT NULL,
    window_start  timestamptz,                       -- readings published in this window
    window_end    timestamptz,                       -- were probably lost
    detail        text NOT NULL
);
CREATE INDEX ingest_incidents_at_idx ON ingest_incidents (at);

-- Size of the payload as received; payload may hold only its first
-- dead_letter_keep_bytes (NULL: rows from before this column, payload is whole).
ALTER TABLE dead_letters ADD COLUMN payload_bytes integer;
