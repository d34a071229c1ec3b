"""Small value objects of carbon accounting: scope labels and the result of a refresh.

``Period`` and ``parse_period`` live in ``parkcarbon.periods`` (re-exported here)."""

from __future__ import annotations

from dataclasses import dataclass

from parkcarbon.periods import Period, parse_period

__all__ = ["Period", "RefreshResult", "parse_period"]

# Scope labels stored in emissions_daily.scope.
SCOPE_1 = "1"
SCOPE_2 = "2"
SCOPE_3 = "3"  # water: informational, never added to Scope 1+2
SCOPE_PV = "pv"  # on-site PV generation: zero emission, counts as energy consumed
SCOPE_EXPORT = "export"  # power fed to the grid: does not reduce Scope 2


@dataclass(frozen=True)
class RefreshResult:
    """What one accounting run did."""

    run_id: int | None  # None: nothing to do, no run recorded
    days_recomputed: int  # (meter, local day) rows written: new or changed
    restated: int  # stored figures that changed (restatements logged)
    factors_synced: int  # new factor versions stored
    reason: str
    seconds: float
    days_checked: int = 0  # (meter, local day) pairs recomputed and compared
    days_removed: int = 0  # stored rows whose usage went away (or meter no longer counted)
    days_filled: int = 0  # rows of a day still filling in (partial before): not restated
