"""``parkcarbon mqtt credentials``: broker accounts, ACL and config from the registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click

from parkcarbon.clikit import AppContext, emit_mapping, format_option, pass_app


@click.group("mqtt")
def mqtt_group() -> None:
    """Broker accounts and ACLs generated from the registry."""


@mqtt_group.command("credentials")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for passwd, acl, mosquitto.conf and secrets/ (created).")
@click.option("--rotate", "rotate", multiple=True, metavar="ACCOUNT",
              help="Give this account (an enterprise id, ingest or service) a new "
              "password; repeatable.")
@click.option("--broker-config", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=Path("config/mosquitto/mosquitto.conf"), show_default=True,
              help="The project's broker config the generated one is made from.")
@click.option("--tls-config", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("config/mosquitto/tls.conf"), show_default=True,
              help="TLS listener appended to the generated config (skipped if missing).")
@click.option("--broker-dir", default="/mosquitto/config/parkcarbon", show_default=True,
              help="Where the broker sees --out (paths inside the generated config).")
@format_option
@pass_app
def credentials_command(app: AppContext, out: Path, rotate: tuple[str, ...],
                        broker_config: Path, tls_config: Path, broker_dir: str,
                        fmt: str) -> None:
    """Write the broker's password file (Mosquitto PBKDF2-SHA512), ACL and config.

    Each enterprise may publish only to <prefix>/<its id>/# and subscribe only to
    <prefix>/alerts/<its id>; ingest reads <prefix>/+/+, service publishes alerts.
    Passwords are generated once into --out/secrets/ (mode 0600) and kept; no password
    is printed. Enterprises added to or removed from the registry are added or removed.
    """
    from parkcarbon.registry import load_registry
    from parkcarbon.security.broker import generate

    settings = app.settings()
    registry = load_registry(settings.registry_file)
    result = generate(
        out,
        topic_prefix=settings.topic_prefix,
        enterprise_ids=[e.id for e in registry.enterprises],
        project_conf=broker_config,
        tls_conf=tls_config if tls_config.is_file() else None,
        rotate=list(rotate),
        broker_dir=broker_dir.rstrip("/"),
    )
    summary = {
        "out": str(result.out),
        "accounts": len(result.accounts),
        "created": result.created,
        "rotated": result.rotated,
        "removed": result.removed,
        "files": ["passwd", "acl", "mosquitto.conf", "secrets/<account>.password"],
    }

    def text() -> Iterator[str]:
        yield f"{result.out}: passwd, acl, mosquitto.conf for {len(result.accounts)} accounts"
        for key in ("created", "rotated", "removed"):
            names = summary[key]
            if names:
                yield f"{key}: {', '.join(names)}"  # type: ignore[arg-type]
        yield f"passwords: {result.out}/secrets/<account>.password (mode 0600, not printed)"

    emit_mapping(summary, fmt, text)
