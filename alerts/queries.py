"""Every SQL statement of parkcarbon.alerts.

Evaluation reads one statement per rule (never one per meter): the meters are passed
as one array.
"""

from __future__ import annotations

# --- sources -------------------------------------------------------------------------

# usage of each meter in [t0, t1): sum and slot count
USAGE_WINDOW = """
SELECT meter_id, sum(quantity), count(*)
FROM usage
WHERE meter_id = ANY(%(meters)s) AND ts >= %(t0)s AND ts < %(t1)s
GROUP BY meter_id
"""

# usage of each meter in several windows of equal length; k = 1 is the current window
USAGE_WINDOWS = """
SELECT u.meter_id, w.k, sum(u.quantity), count(*)
FROM unnest(%(starts)s::timestamptz[]) WITH ORDINALITY AS w(start, k)
JOIN usage u ON u.ts >= w.start AND u.ts < w.start + %(length)s::interval
WHERE u.meter_id = ANY(%(meters)s)
GROUP BY u.meter_id, w.k
"""

# the last reading of each meter at or before t (one index probe per meter)
LAST_READING = """
SELECT m.id, r.ts
FROM unnest(%(meters)s::text[]) AS m(id)
LEFT JOIN LATERAL (
    SELECT ts FROM readings WHERE meter_id = m.id AND ts <= %(t)s ORDER BY ts DESC LIMIT 1
) r ON true
"""

# measured (not estimated) slots of each meter in [t0, t1)
MEASURED_SLOTS = """
SELECT meter_id, count(*) FILTER (WHERE NOT estimated), count(*)
FROM usage
WHERE meter_id = ANY(%(meters)s) AND ts >= %(t0)s AND ts < %(t1)s
GROUP BY meter_id
"""

METER_EVENTS = """
SELECT meter_id, count(*), array_agg(DISTINCT kind ORDER BY kind), max(ts)
FROM meter_events
WHERE meter_id = ANY(%(meters)s) AND kind = ANY(%(kinds)s) AND ts > %(t0)s AND ts <= %(t1)s
GROUP BY meter_id
"""

DEAD_LETTERS_PER_ENTERPRISE = """
SELECT enterprise_id, count(*), array_agg(DISTINCT reason_code ORDER BY reason_code)
FROM dead_letters
WHERE enterprise_id IS NOT NULL AND received_at > %(t0)s AND received_at <= %(t1)s
GROUP BY enterprise_id
"""

# per ingest client id: its incidents of the given kinds in (t0, t1] and the latest of
# them; every client id ingest held a session with is a subject (count 0), so an alert
# resolves through the state machine when its incidents leave the window
INGEST_INCIDENTS = """
WITH recent AS (
    SELECT id, at, kind, broker, client_id, window_start, window_end
    FROM ingest_incidents
    WHERE kind = ANY(%(kinds)s) AND at > %(t0)s AND at <= %(t1)s
), counts AS (
    SELECT client_id, count(*) AS n, array_agg(DISTINCT kind ORDER BY kind) AS kinds
    FROM recent GROUP BY client_id
), latest AS (
    SELECT DISTINCT ON (client_id) client_id, id, at, kind, broker, window_start, window_end
    FROM recent ORDER BY client_id, at DESC, id DESC
)
SELECT c.client_id, coalesce(n.n, 0), n.kinds, l.id, l.at, l.kind, l.broker,
       l.window_start, l.window_end
FROM (SELECT client_id FROM ingest_sessions UNION SELECT client_id FROM recent) c
LEFT JOIN counts n USING (client_id)
LEFT JOIN latest l USING (client_id)
"""

MONTH_BUDGETS = """
SELECT enterprise_id, budget_co2_t, cap_co2_t
FROM carbon_budgets
WHERE month = %(month)s
"""

# --- instances and history -------------------------------------------------------

INSTANCE_COLUMNS = (
    "id, rule_id, subject, enterprise_id, meter_id, kind, severity, state, value, "
    "threshold, pending_since, active_since, recovering_since, resolved_at, episode, "
    "last_eval_at, ack_by, ack_until, ack_comment, detail"
)

INSTANCES_OF_RULES = f"""
SELECT {INSTANCE_COLUMNS} FROM alert_instances WHERE rule_id = ANY(%(rules)s)
"""

INSTANCES_NOT_NORMAL = f"""
SELECT {INSTANCE_COLUMNS} FROM alert_instances
WHERE state IN ('pending', 'firing', 'recovering', 'nodata', 'error')
"""

INSTANCE_BY_ID = f"SELECT {INSTANCE_COLUMNS} FROM alert_instances WHERE id = %(id)s"

UPSERT_INSTANCE = """
INSERT INTO alert_instances AS a (rule_id, subject, enterprise_id, meter_id, kind, severity,
    state, value, threshold, pending_since, active_since, recovering_since, resolved_at,
    episode, last_eval_at, ack_by, ack_until, ack_comment, detail, updated_at)
VALUES (%(rule_id)s, %(subject)s, %(enterprise_id)s, %(meter_id)s, %(kind)s, %(severity)s,
    %(state)s, %(value)s, %(threshold)s, %(pending_since)s, %(active_since)s,
    %(recovering_since)s, %(resolved_at)s, %(episode)s, %(last_eval_at)s, %(ack_by)s,
    %(ack_until)s, %(ack_comment)s, %(detail)s, now())
ON CONFLICT (rule_id, subject) DO UPDATE SET
    enterprise_id = excluded.enterprise_id, meter_id = excluded.meter_id,
    kind = excluded.kind, severity = excluded.severity, state = excluded.state,
    value = excluded.value, threshold = excluded.threshold,
    pending_since = excluded.pending_since, active_since = excluded.active_since,
    recovering_since = excluded.recovering_since, resolved_at = excluded.resolved_at,
    episode = excluded.episode, last_eval_at = excluded.last_eval_at,
    ack_by = excluded.ack_by, ack_until = excluded.ack_until,
    ack_comment = excluded.ack_comment, detail = excluded.detail, updated_at = now()
RETURNING id
"""

INSERT_HISTORY = """
INSERT INTO alert_history (instance_id, enterprise_id, at, from_state, to_state, value, note)
VALUES (%s, %s, %s, %s, %s, %s, %s)
"""

ACK_INSTANCE = """
UPDATE alert_instances
SET ack_by = %(by)s, ack_until = %(until)s, ack_comment = %(comment)s, updated_at = now()
WHERE id = %(id)s AND state IN ('firing', 'recovering', 'nodata', 'error')
    AND (%(episode)s::int IS NULL OR episode = %(episode)s)
RETURNING id, episode
"""

LIST_INSTANCES = f"""
SELECT {INSTANCE_COLUMNS} FROM alert_instances
WHERE (%(states)s::text[] IS NULL OR state = ANY(%(states)s))
  AND (%(enterprise)s::text IS NULL OR enterprise_id = %(enterprise)s)
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 WHEN 'minor' THEN 2
         ELSE 3 END, active_since NULLS LAST, id
"""

HISTORY = """
SELECT h.id, h.at, a.id, a.rule_id, a.subject, h.enterprise_id, h.from_state, h.to_state,
       h.value, h.note
FROM alert_history h JOIN alert_instances a ON a.id = h.instance_id
WHERE (%(enterprise)s::text IS NULL OR h.enterprise_id = %(enterprise)s)
  AND (%(instance)s::bigint IS NULL OR h.instance_id = %(instance)s)
ORDER BY h.at DESC, h.id DESC
LIMIT %(limit)s
"""

# --- silences --------------------------------------------------------------------

ADD_SILENCE = """
INSERT INTO alert_silences (enterprise_id, matchers, starts_at, ends_at, author, reason)
VALUES (%s, %s, %s, %s, %s, %s) RETURNING id
"""

ACTIVE_SILENCES = """
SELECT id, matchers FROM alert_silences
WHERE expired_at IS NULL AND starts_at <= %(now)s AND ends_at > %(now)s
"""

LIST_SILENCES = """
SELECT id, enterprise_id, matchers, starts_at, ends_at, author, reason, created_at,
       expired_at
FROM alert_silences
WHERE %(all)s OR (expired_at IS NULL AND ends_at > %(now)s)
ORDER BY id
"""

EXPIRE_SILENCE = """
UPDATE alert_silences SET expired_at = %(now)s
WHERE id = %(id)s AND expired_at IS NULL RETURNING id
"""

# --- groups and outbox -----------------------------------------------------------

GROUPS = """
SELECT group_key, recipient, enterprise_id, created_at, first_due_at, last_sent_at, notified
FROM alert_groups
"""

UPSERT_GROUP = """
INSERT INTO alert_groups AS g (group_key, recipient, enterprise_id, created_at, first_due_at,
                               last_sent_at, notified)
VALUES (%(group_key)s, %(recipient)s, %(enterprise_id)s, %(created_at)s, %(first_due_at)s,
        %(last_sent_at)s, %(notified)s)
ON CONFLICT (group_key) DO UPDATE SET
    first_due_at = excluded.first_due_at, last_sent_at = excluded.last_sent_at,
    notified = excluded.notified
"""

DELETE_GROUP = "DELETE FROM alert_groups WHERE group_key = %s"

ENQUEUE = """
INSERT INTO alert_outbox (dedup_key, group_key, recipient, channel, enterprise_id, reason,
                          message, created_at, next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING id
"""

# the due channels, then rows of one channel, claimed so a second instance skips them
DUE_CHANNELS = """
SELECT DISTINCT channel FROM alert_outbox
WHERE status = 'pending' AND next_attempt_at <= %(now)s
"""

CLAIM_DUE = """
SELECT id, dedup_key, group_key, recipient, channel, enterprise_id, reason, message,
       created_at, attempts
FROM alert_outbox
WHERE status = 'pending' AND next_attempt_at <= %(now)s AND channel = %(channel)s
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

MARK_SENT = """
UPDATE alert_outbox SET status = 'sent', sent_at = %(now)s, attempts = attempts + 1,
    last_error = NULL
WHERE id = ANY(%(ids)s)
"""

MARK_RETRY = """
UPDATE alert_outbox SET attempts = attempts + 1, last_error = %(error)s,
    next_attempt_at = %(next)s,
    status = CASE WHEN attempts + 1 >= %(max)s THEN 'failed' ELSE 'pending' END
WHERE id = ANY(%(ids)s)
"""

DEFER = "UPDATE alert_outbox SET next_attempt_at = %(next)s WHERE id = ANY(%(ids)s)"

LOG_ATTEMPT = """
INSERT INTO alert_delivery_attempts (outbox_id, enterprise_id, channel, at, ok, detail,
                                     duration_ms, worker)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""

# messages sent to a channel since t (robot rate limit)
SENT_SINCE = """
SELECT count(DISTINCT at) FROM alert_delivery_attempts
WHERE channel = %(channel)s AND ok AND at > %(since)s
"""

DELIVERIES = """
SELECT o.id, o.created_at, o.recipient, o.channel, o.enterprise_id, o.reason, o.status,
       o.attempts, o.next_attempt_at, o.sent_at, o.last_error, o.message->>'title'
FROM alert_outbox o
WHERE (%(enterprise)s::text IS NULL OR o.enterprise_id = %(enterprise)s)
  AND (%(status)s::text IS NULL OR o.status = %(status)s)
ORDER BY o.id DESC
LIMIT %(limit)s
"""

ATTEMPTS_OF = """
SELECT outbox_id, at, ok, detail, duration_ms, worker FROM alert_delivery_attempts
WHERE outbox_id = ANY(%(ids)s) ORDER BY id
"""
