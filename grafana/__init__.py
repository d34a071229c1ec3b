"""Grafana boards as code: build, provision, publish and check every panel's SQL.

What other packages may use (everything else is internal):

- ``parkcarbon.grafana.build``: ``build_boards(ctx)`` (board JSON), ``provisioning_files``;
- ``parkcarbon.grafana.provision``: the same from ``Settings`` and the registry;
- ``parkcarbon.grafana.macros``: ``expand`` (Grafana's macro engine), ``TimeRange``,
  ``Variable``;
- ``parkcarbon.grafana.check``: ``run_checks`` / ``run_query`` (panel SQL on a database);
- ``parkcarbon.grafana.publish``: grafana-client publishing;
- ``parkcarbon.grafana.cli``: ``grafana_group`` (``parkcarbon grafana``).

See docs/grafana.md.
"""
