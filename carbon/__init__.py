"""Carbon accounting: factors, scopes, standard coal, indicators, targets.

Public API (imported from the modules, which load pandas lazily for the CLI):

* ``current.bring_up_to_date(conn, settings) -> UpToDate``: derive usage from new
  readings, sync the economics file, refresh the figures (what every read does first)
* ``accounting.refresh(conn, settings=None, *, period=None, force=False) -> RefreshResult``
  (``run_id`` None: nothing to do, no run recorded)
* ``accounting.emissions(conn, *, period, enterprise=None, basis="location", freq=None,
  energy_basis="equivalent") -> DataFrame``
* ``accounting.park_summary(conn, period, *, basis="location", top=5) -> ParkSummary``
* ``indicators.indicators(conn, *, period, basis="location") -> DataFrame``
* ``targets.load_targets(path, enterprises=None) -> Targets``,
  ``targets.targets_status(conn, *, year, targets, as_of=None) -> DataFrame``,
  ``targets.monthly_budgets(targets, subject, year) -> DataFrame``
* ``economics.load_economics(path, enterprises=None)``, ``economics.sync_economics(conn, e)
  -> int``, ``economics.sync_economics_counts(conn, e) -> (stored, market restated)``
* ``factors.load_library(overrides=None) -> FactorLibrary``
* ``restatement.restatements(conn, *, run_id=None, period=None, enterprise=None,
  by="month") -> DataFrame``, ``restatement.runs(conn) -> DataFrame``,
  ``restatement.green_power_restatements(conn, *, period=None, enterprise=None)
  -> DataFrame``

All SQL: ``queries``. User documentation: docs/carbon.md.
"""
