"""Every SQL statement of parkcarbon.reports, by name (habit 14: no SQL elsewhere).

The figures themselves come from ``parkcarbon.carbon`` (emissions, indicators, targets,
restatements); these read what the carbon package has no function for: breakdowns of
the stored daily figures by carrier, budgets (``carbon_budgets``), data quality
(usage slots, meter events, dead letters), factor versions, alerts of the month, the
inputs behind the figures (for the receipt) and the report records.
"""

from __future__ import annotations

# --- breakdowns of the stored figures ----------------------------------------------

# Energy and tCO2 (location) per enterprise, carrier and scope for [d0, d1).
BY_CARRIER = """
SELECT enterprise_id, carrier, scope, min(unit), sum(quantity), sum(tce_equivalent),
       sum(tce_equal_value), sum(co2_location_t)
FROM emissions_daily WHERE day >= %s AND day < %s
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""

# Scope 1+2 tCO2 (location-based) per enterprise and local day of [d0, d1): the stored
# daily figures plus the day's share of the month's process emissions, as
# ``carbon.accounting.emissions(freq="day")`` adds them (a day with only water rows
# counts, with 0), without its per-row provenance: the daily chart needs none.
DAILY_SCOPE12 = """
SELECT enterprise_id, day, sum(co2_t) FROM (
    SELECT enterprise_id, day,
           coalesce(sum(co2_location_t) FILTER (WHERE scope IN ('1', '2')), 0) AS co2_t
    FROM emissions_daily WHERE day >= %(d0)s AND day < %(d1)s
    GROUP BY 1, 2
    UNION ALL
    SELECT p.enterprise_id, d::date,
           sum(p.co2_t / extract(day FROM (p.month + INTERVAL '1 month' - INTERVAL '1 day')))
    FROM process_emissions p,
         generate_series(greatest(p.month, %(d0)s::date),
                         least(p.month + INTERVAL '1 month', %(d1)s::date) - INTERVAL '1 day',
                         INTERVAL '1 day') AS d
    WHERE p.month < %(d1)s AND p.month + INTERVAL '1 month' > %(d0)s
    GROUP BY 1, 2
) x GROUP BY 1, 2 ORDER BY 1, 2"""

# The latest accounting run behind the stored figures of [d0, d1), per enterprise.
RUNS_BEHIND = """
SELECT enterprise_id, max(run_id) FROM emissions_daily WHERE day >= %s AND day < %s
GROUP BY 1"""

# Everything the figures of [d0, d1) are computed from, per enterprise: the SHA-256 of
# its stored meter-day quantities with their factor versions, in a stable order (float8
# prints its shortest exact text, so the same stored value gives the same digest).
INPUT_DIGESTS = """
SELECT e.enterprise_id, count(*),
       encode(sha256(convert_to(string_agg(
           concat_ws(' ', e.meter_id, e.day, e.carrier, e.scope, e.quantity, e.slots,
                     e.estimated, array_to_string(p.factor_ids, ',')),
           E'\n' ORDER BY e.meter_id, e.day), 'UTF8')), 'hex')
FROM emissions_daily e JOIN carbon_plans p USING (plan_id)
WHERE e.day >= %s AND e.day < %s
GROUP BY 1"""
GREEN_ROWS = """
SELECT enterprise_id, month::text, contract_kwh, certificate_kwh FROM green_power
WHERE month >= %s AND month < %s ORDER BY 1, 2"""
ECONOMICS_ROWS = """
SELECT enterprise_id, month::text, value_added_10k_cny, tax_10k_cny, investment_10k_cny
FROM enterprise_economics WHERE month >= %s AND month < %s ORDER BY 1, 2"""

# --- budgets (written by the accounting refresh from the targets file) -------------

HAS_BUDGETS = "SELECT to_regclass('carbon_budgets') IS NOT NULL"
# Every subject's budget for the months of one year (enterprise_id NULL: the park).
BUDGETS_OF_YEAR = """
SELECT enterprise_id, month, cap_co2_t, budget_co2_t, intensity_co2_per_10k_cny, basis,
       profile, cap_source
FROM carbon_budgets WHERE month >= %s AND month < %s
ORDER BY coalesce(enterprise_id, ''), month"""

# --- data quality ------------------------------------------------------------------

# Active accounted meters per enterprise (expected slots = meters x slots of the month).
METERS_PER_ENTERPRISE = """
SELECT enterprise_id, count(*) FROM meters WHERE role <> 'sub_meter' GROUP BY 1"""
# Measured and estimated usage slots per enterprise in [t0, t1).
SLOTS_PER_ENTERPRISE = """
SELECT m.enterprise_id, count(*) FILTER (WHERE NOT u.estimated),
       count(*) FILTER (WHERE u.estimated)
FROM usage u JOIN meters m ON m.id = u.meter_id
WHERE u.ts >= %s AND u.ts < %s AND m.role <> 'sub_meter'
GROUP BY 1"""
# The same from the per-day totals plain PostgreSQL keeps (migration 0005): ~37,000
# rows for a month of 1,200 meters instead of 3.6 million usage rows.
HAS_DAY_TOTALS = "SELECT to_regclass('usage_day_totals') IS NOT NULL"
SLOTS_FROM_DAY_TOTALS = """
SELECT m.enterprise_id, sum(t.slots - t.estimated_slots), sum(t.estimated_slots)
FROM usage_day_totals t JOIN meters m ON m.id = t.meter_id
WHERE t.bucket >= %s AND t.bucket < %s AND m.role <> 'sub_meter'
GROUP BY 1"""
# Gaps, resets and other counter events per enterprise in (t0, t1].
EVENTS_PER_ENTERPRISE = """
SELECT m.enterprise_id, e.kind, count(*)
FROM meter_events e JOIN meters m ON m.id = e.meter_id
WHERE e.ts > %s AND e.ts <= %s
GROUP BY 1, 2"""
# Dead letters received in [t0, t1) per enterprise (NULL: not attributable).
DEAD_LETTERS_PER_ENTERPRISE = """
SELECT enterprise_id, count(*) FROM dead_letters
WHERE received_at >= %s AND received_at < %s GROUP BY 1"""
# Latest reading received for the month, per enterprise (the report's data cut-off).
CUTOFF_PER_ENTERPRISE = """
SELECT m.enterprise_id, max(r.received_at)
FROM readings r JOIN meters m ON m.id = r.meter_id
WHERE r.ts >= %s AND r.ts < %s GROUP BY 1"""

# --- factors -----------------------------------------------------------------------

FACTORS_BY_ID = """
SELECT version_id, key, region, year, value, unit, per_canonical, canonical_unit, source,
       confidence, unconfirmed, origin, enterprise_id
FROM carbon_factors WHERE version_id = ANY(%s) ORDER BY key, version_id"""

# --- alerts of the month (parkcarbon.alerts tables, when migrated) -----------------

HAS_ALERTS = "SELECT to_regclass('alert_history') IS NOT NULL"
ALERTS_OF_MONTH = """
SELECT h.at, i.rule_id, i.subject, i.enterprise_id, i.kind, i.severity, h.from_state,
       h.to_state, h.value
FROM alert_history h JOIN alert_instances i ON i.id = h.instance_id
WHERE h.at >= %s AND h.at < %s AND h.to_state IN ('firing', 'normal')
  AND (%s::text IS NULL OR i.enterprise_id = %s)
ORDER BY h.at, i.rule_id, i.subject"""

# --- report records ----------------------------------------------------------------

LATEST_REPORT = """
SELECT id, version, figures_sha256, inputs_sha256, accounting_run_id, figures,
       generated_at, data_cutoff, changes
FROM reports WHERE period = %s AND coalesce(enterprise_id, '') = coalesce(%s, '')
ORDER BY version DESC LIMIT 1"""
INSERT_REPORT = """
INSERT INTO reports (period, enterprise_id, version, figures_sha256, inputs_sha256,
    accounting_run_id, factor_library, software_version, figures, changes, data_cutoff,
    generated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (coalesce(enterprise_id, ''), period, version) DO NOTHING
RETURNING id"""
UPSERT_FILE = """
INSERT INTO report_files (report_id, enterprise_id, lang, format, path, sha256, bytes)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (report_id, lang, format) DO UPDATE SET path = excluded.path,
    sha256 = excluded.sha256, bytes = excluded.bytes, written_at = now()"""
LIST_REPORTS = """
SELECT r.id, r.period, r.enterprise_id, r.version, r.generated_at, r.figures_sha256,
       r.accounting_run_id,
       coalesce((SELECT string_agg(f.lang || ':' || f.format, ' ' ORDER BY f.lang, f.format)
                 FROM report_files f WHERE f.report_id = r.id), ''),
       jsonb_array_length(r.changes),
       coalesce((SELECT string_agg(d.channel_id || ' ' || d.lang || ': ' || d.status
                                   || CASE WHEN d.status = 'sent' THEN ''
                                      ELSE ' (' || d.attempts || ' attempts: '
                                           || left(d.detail, 120) || ')' END,
                                   '; ' ORDER BY d.channel_id, d.lang)
                 FROM report_deliveries d WHERE d.report_id = r.id), '')
FROM reports r
WHERE (%s::date IS NULL OR r.period = %s)
ORDER BY r.period, coalesce(r.enterprise_id, ''), r.version"""
FILE_BY_SHA256 = """
SELECT r.id, r.period, r.enterprise_id, r.version, r.figures_sha256, r.inputs_sha256,
       f.lang, f.format
FROM report_files f JOIN reports r ON r.id = f.report_id WHERE f.sha256 = %s
ORDER BY r.id DESC LIMIT 1"""
# Reported (period, subject) pairs, latest version each (the scheduled re-check).
LATEST_REPORTED = """
SELECT DISTINCT ON (coalesce(enterprise_id, ''), period) period, enterprise_id,
       accounting_run_id, generated_at
FROM reports ORDER BY coalesce(enterprise_id, ''), period, version DESC"""
# Was anything of [d0, d1) restated after run ``run`` (or green power after ``at``)?
RESTATED_SINCE = """
SELECT EXISTS (SELECT 1 FROM restatements WHERE day >= %(d0)s AND day < %(d1)s
                 AND run_id > %(run)s AND (%(ent)s::text IS NULL OR enterprise_id = %(ent)s))
    OR EXISTS (SELECT 1 FROM green_power_restatements WHERE month >= %(d0)s
                 AND month < %(d1)s AND restated_at > %(at)s
                 AND (%(ent)s::text IS NULL OR enterprise_id = %(ent)s))
    OR EXISTS (SELECT 1 FROM carbon_budgets WHERE updated_at > %(at)s
                 AND month >= date_trunc('year', %(d0)s::date) AND month < %(d1)s)"""

# --- registry ----------------------------------------------------------------------

ENTERPRISE_IDS = "SELECT id FROM enterprises ORDER BY id"
ENTERPRISES = "SELECT id, name_zh, credit_code, land_area_mu FROM enterprises ORDER BY id"
PARK_NAME = "SELECT name_zh, name FROM park LIMIT 1"
ENTERPRISE_EXISTS = "SELECT 1 FROM enterprises WHERE id = %s"

# This transaction only: commit without waiting for the WAL flush (report records).
ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"

# --- e-mail delivery (report_deliveries) ---------------------------------------------

# Claim one delivery: the row is created pending ('retry', 0 attempts) if new, then
# locked for this sender (a second instance skips it while it is being sent).
NEW_DELIVERY = """
INSERT INTO report_deliveries (report_id, enterprise_id, lang, channel_id, recipients,
                               status, attempted_at)
VALUES (%(report)s, %(ent)s, %(lang)s, %(channel)s, %(to)s, 'retry', %(now)s)
ON CONFLICT (report_id, lang, channel_id) DO NOTHING"""
CLAIM_DELIVERY = """
SELECT status, attempts FROM report_deliveries
WHERE report_id = %(report)s AND lang = %(lang)s AND channel_id = %(channel)s
FOR UPDATE SKIP LOCKED"""
# The outcome of the attempts just made.
RECORD_DELIVERY = """
UPDATE report_deliveries
SET status = %(status)s, attempts = attempts + %(tries)s, detail = %(detail)s,
    recipients = %(to)s, attempted_at = %(now)s,
    sent_at = CASE WHEN %(status)s = 'sent' THEN %(now)s ELSE sent_at END
WHERE report_id = %(report)s AND lang = %(lang)s AND channel_id = %(channel)s"""
# Deliveries left 'retry' (4xx, server unreachable) of the latest version of each
# report, with the files of that language (the hourly retry).
PENDING_DELIVERIES = """
SELECT DISTINCT r.id, r.period, r.enterprise_id, r.version, r.figures_sha256, d.lang,
       (SELECT array_agg(f.path ORDER BY f.format) FROM report_files f
        WHERE f.report_id = r.id AND f.lang = d.lang)
FROM report_deliveries d JOIN reports r ON r.id = d.report_id
WHERE d.status = 'retry'
  AND r.version = (SELECT max(r2.version) FROM reports r2 WHERE r2.period = r.period
                   AND coalesce(r2.enterprise_id, '') = coalesce(r.enterprise_id, ''))
ORDER BY r.period, r.id"""
ANY_PENDING_DELIVERY = "SELECT 1 FROM report_deliveries WHERE status = 'retry' LIMIT 1"
# The enterprise's name (the e-mail subject).
ENTERPRISE_NAME = "SELECT name_zh FROM enterprises WHERE id = %s"
