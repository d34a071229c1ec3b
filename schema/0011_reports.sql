-- Monthly carbon reports (parkcarbon.reports): one row per report version and subject
-- (the park, or one enterprise), and the files written for it. A later restatement
-- that changes a figure of a reported month gives the next version, with a change page
-- (old, new, cause) kept in `changes`; earlier versions are never overwritten.
-- enterprise_id NULL: the park report (row-level security, #12).
CREATE TABLE reports (
    id                 bigserial PRIMARY KEY,
    period             date NOT NULL CHECK (extract(day FROM period) = 1),  -- local month
    enterprise_id      text,
    version            integer NOT NULL CHECK (version >= 1),
    figures_sha256     text NOT NULL,          -- the report's figures (canonical JSON)
    inputs_sha256      text NOT NULL,          -- stored daily figures, factors, budgets
    accounting_run_id  bigint,                 -- latest accounting run behind the figures
    factor_library     text NOT NULL,          -- hash of the factor version ids in use
    software_version   text NOT NULL,
    figures            jsonb NOT NULL,         -- key figures, compared by the next version
    changes            jsonb NOT NULL DEFAULT '[]',  -- change page of this version
    data_cutoff        timestamptz,            -- latest reading received for the month
    generated_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX reports_subject_version_idx
    ON reports (coalesce(enterprise_id, ''), period, version);

CREATE TABLE report_files (
    report_id      bigint NOT NULL REFERENCES reports (id),
    enterprise_id  text,
    lang           text NOT NULL CHECK (lang IN ('zh', 'en')),
    format         text NOT NULL CHECK (format IN ('pdf', 'xlsx', 'csv')),
    path           text NOT NULL,
    sha256         text NOT NULL,
    bytes          bigint NOT NULL,
    written_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (report_id, lang, format)
);
CREATE INDEX report_files_sha256_idx ON report_files (sha256);
