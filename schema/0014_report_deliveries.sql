-- E-mail delivery of the monthly reports (parkcarbon.reports.delivery): one row per
-- report version, language and e-mail channel (the park officers, or an enterprise's
-- own contacts, through the alerts e-mail channels). A row marked 'sent' is never sent
-- again (a retry or a second run skips it); 'retry' (4xx reply, server unreachable) is
-- tried again by the next `report --send` or scheduled run; 'failed' (5xx reply:
-- permanent) is not retried, and `report list` shows it.
-- enterprise_id NULL: the park report (row-level security, #12).
CREATE TABLE report_deliveries (
    report_id      bigint NOT NULL REFERENCES reports (id),
    enterprise_id  text,
    lang           text NOT NULL CHECK (lang IN ('zh', 'en')),
    channel_id     text NOT NULL,
    recipients     text[] NOT NULL,
    status         text NOT NULL CHECK (status IN ('sent', 'retry', 'failed')),
    attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    detail         text NOT NULL DEFAULT '',   -- what the SMTP server said last
    attempted_at   timestamptz NOT NULL,
    sent_at        timestamptz,
    PRIMARY KEY (report_id, lang, channel_id)
);
CREATE INDEX report_deliveries_status_idx ON report_deliveries (status)
    WHERE status <> 'sent';
