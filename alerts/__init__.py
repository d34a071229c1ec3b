"""Alerts: rules, a durable state machine per (rule, subject), and notification delivery.

Public API (imported from the modules; this package imports nothing itself, so the CLI
stays quick and no module imports its own package):

* ``rules.load_alerts(path, registry=None) -> AlertsConfig`` (every problem at once),
  ``rules.parse_alerts(data, source, registry)``, ``rules.secret_problems(config)``
* ``engine.run_cycle(settings, registry, config, now, *, send=True, only=None)
  -> CycleResult``: evaluate, dispatch and deliver (the minute job's body);
  ``engine.evaluate(conn, config, ctx)``
* ``dispatch.dispatch(conn, config, *, now, tz, registry=None, ack_secret=None) -> Plan``
* ``deliver.deliver(settings, config, *, now, worker=...) -> DeliveryResult``
* ``state.acknowledge(conn, instance_id, *, by, until, comment, now, episode=None)``
* ``ack.sign_link(...)``, ``ack.AckHandler`` (the ``/alerts/ack`` route)
* ``notify.NOTIFIERS`` (channel type -> notifier), ``notify.notifier_for(channel, ...)``
* ``models.RULE_KINDS``, ``models.CHANNEL_TYPES``
* ``jobs.jobs(settings)`` (``parkcarbon run``), ``jobs.http_routes(settings)``
* ``demo.demo_alerts(settings, registry, start, end)`` (``parkcarbon demo``)

All SQL: ``queries``. Errors: ``errors``. User documentation: docs/alerts.md.
"""
