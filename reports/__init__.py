"""Monthly carbon reports: PDF (Typst), XLSX and CSV, versioned and verifiable.

Public API (other packages use these, nothing else):

* ``generate.generate_reports(conn, settings, period, subjects, *, lang, out_dir, formats,
  now) -> list[WrittenReport]``: write and record the reports of ``subjects`` (``None`` =
  the park, or enterprise ids) for a local month; same figures -> same version and bytes,
  changed figures -> the next version with a change page
* ``generate.recheck_reported(conn, settings, *, skip, now)``: new versions of reported
  months a restatement changed
* ``verify.verify_file(conn, settings, path) -> Verification``
* ``figures.load_month(conn, settings, period)`` and ``figures.subject_figures(month,
  enterprise)``: the report's figures as plain data
* ``jobs.jobs(settings)``: the ``monthly_reports`` job (1st of the month, 06:00 park time)
* ``cli.report_group``: ``parkcarbon report``, ``report list``, ``report verify``

Layout: ``figures`` (read the month) -> ``document`` (sections, tables, charts in zh/en,
``labels``) -> ``pdf`` (Typst, ``template``) / ``xlsx`` / ``csvout``; ``generate``
records versions; all SQL in ``queries``. User documentation: docs/reports.md.
"""
