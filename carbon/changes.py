"""SQL of an accounting run's change detection: which recomputed (meter, day) rows differ
from the stored ones, which of those are restatements, and how the rows are stored.

Temp tables of the run (``engine``): ``_dirty(meter_id, day)`` the pairs recomputed,
``_rows`` their new figures, ``_changed`` the pairs whose stored row is written or
removed. A pair whose recomputed row equals the stored one (figures within EPSILON,
same factor plan, slots and flags) is left alone: not rewritten, not restated.

A restatement is a change of a stored figure (quantity, heat, tCO2, tce) of a day whose
stored row covered the whole local day. A day still filling in (fewer slots than the
local day has, more now: the day in progress, or data still arriving) is updated
without a restatement; a new factor version that gives the same figures updates the
row's provenance only.
"""

from __future__ import annotations

# Stored columns of a (meter, day) row that can change between runs, and the figures
# among them (a restatement is a change of a figure). NaN (no ETS / equal-value factor)
# is stored as NULL, so compare through _num().
_FIGURES = (
    "quantity",
    "heat_gj",
    "co2_location_t",
    "co2_market_t",
    "co2_ets_t",
    "tce_equivalent",
    "tce_equal_value",
)


def _num(expr: str) -> str:
    return f"CASE WHEN {expr} = 'NaN' THEN NULL ELSE {expr} END"


def _differs(col: str) -> str:
    o, n = f"o.{col}", _num(f"n.{col}")
    return f"(({o} IS NULL) <> ({n} IS NULL) OR abs({o} - {n}) > %(eps)s * greatest(abs({o}), 1))"


_FIGURE_CHANGED = " OR ".join(_differs(c) for c in _FIGURES)

# _changed: the dirty (meter, day) pairs whose stored row must be written or removed
# (new, gone, or any stored value different). Everything else is left untouched.
CHANGED = f"""
CREATE TEMP TABLE _changed ON COMMIT DROP AS
SELECT d.meter_id, d.day,
       o.meter_id IS NOT NULL AS had_old,
       n.meter_id IS NOT NULL AS has_new,
       CASE WHEN o.meter_id IS NULL THEN false
            WHEN n.meter_id IS NULL THEN abs(o.quantity) > %(eps)s
                 OR abs(o.co2_location_t) > %(eps)s OR abs(o.co2_market_t) > %(eps)s
                 OR abs(o.tce_equivalent) > %(eps)s OR abs(o.heat_gj) > %(eps)s
            ELSE {_FIGURE_CHANGED} END AS figure_changed,
       -- the old figure covered only part of its local day and the new one covers more
       -- of it: the day is filling in (in progress, or data still arriving), not restated
       o.meter_id IS NOT NULL AND n.meter_id IS NOT NULL AND n.slots > o.slots
           AND o.slots < extract(epoch FROM ((o.day + 1)::timestamp AT TIME ZONE %(tz)s)
                                 - (o.day::timestamp AT TIME ZONE %(tz)s)) / 900
           AS filling
FROM _dirty d
LEFT JOIN emissions_daily o ON o.meter_id = d.meter_id AND o.day = d.day
LEFT JOIN _rows n ON n.meter_id = d.meter_id AND n.day = d.day
WHERE (o.meter_id IS NULL) <> (n.meter_id IS NULL)
   OR (o.meter_id IS NOT NULL AND (
          o.plan_id IS DISTINCT FROM n.plan_id OR o.enterprise_id <> n.enterprise_id
          OR o.carrier <> n.carrier OR o.role <> n.role OR o.scope <> n.scope
          OR o.unit <> n.unit OR o.estimated <> n.estimated OR o.slots <> n.slots
          OR {_FIGURE_CHANGED}))
"""

# Rows from ``{rows}`` (the _rows table, or the computing query in parentheses) into
# emissions_daily, in primary-key order (day, meter_id), so index inserts append.
STORE = """
INSERT INTO emissions_daily (meter_id, day, enterprise_id, carrier, role, scope, quantity,
    unit, heat_gj, co2_location_t, co2_market_t, co2_ets_t, tce_equivalent,
    tce_equal_value, estimated, slots, plan_id, run_id, computed_at)
SELECT meter_id, day, enterprise_id, carrier, role, scope, quantity, unit, heat_gj,
       co2_location_t, co2_market_t,
       CASE WHEN co2_ets_t = 'NaN' THEN NULL ELSE co2_ets_t END,
       tce_equivalent,
       CASE WHEN tce_equal_value = 'NaN' THEN NULL ELSE tce_equal_value END,
       estimated, slots, plan_id, %(run)s, statement_timestamp()
FROM {rows} n
"""
STORE_CHANGED = """
WHERE EXISTS (SELECT 1 FROM _changed c WHERE c.meter_id = n.meter_id AND c.day = n.day)
ORDER BY day, meter_id
"""
# A span with nothing stored yet: every computed row is new.
STORE_NEW = STORE + "ORDER BY day, meter_id\n"

# A restatement: a stored figure really changed (beyond EPSILON) and the stored row was
# not a day still filling in. A new factor version giving the same figures only updates
# the row's provenance (plan_id), it is not a restatement.
RESTATE = """
INSERT INTO restatements (run_id, meter_id, day, enterprise_id, cause, old_quantity,
    new_quantity, old_co2_location_t, new_co2_location_t, old_co2_market_t,
    new_co2_market_t, old_tce, new_tce, old_factor_ids, new_factor_ids, old_run_id)
SELECT %(run)s, o.meter_id, o.day, o.enterprise_id,
       CASE WHEN n.meter_id IS NOT NULL AND o.plan_id IS DISTINCT FROM n.plan_id
            THEN 'factor_change' ELSE 'late_data' END,
       o.quantity, coalesce(n.quantity, 0), o.co2_location_t, coalesce(n.co2_location_t, 0),
       o.co2_market_t, coalesce(n.co2_market_t, 0), o.tce_equivalent,
       coalesce(n.tce_equivalent, 0),
       (SELECT factor_ids FROM carbon_plans WHERE plan_id = o.plan_id),
       (SELECT factor_ids FROM carbon_plans WHERE plan_id = n.plan_id), o.run_id
FROM _changed c
JOIN emissions_daily o ON o.meter_id = c.meter_id AND o.day = c.day
LEFT JOIN _rows n ON n.meter_id = c.meter_id AND n.day = c.day
WHERE c.figure_changed AND NOT c.filling
"""
