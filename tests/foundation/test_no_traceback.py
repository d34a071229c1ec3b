"""Every command, on a database that was never migrated and against closed ports, says
what is wrong in one line: never a Python traceback (#11 points 7 and 8).

Walks the real command tree, so a command added later is covered without editing this
file. The short commands run one after the other through the console entry point
(``parkcarbon.cli.main``) in one child interpreter (a process per command costs ~5 s of
imports each on a busy machine); a Python exception escaping ``main`` is the traceback
a user would see. Long-running commands (``ingest``, ``run``) run as real processes,
get a few seconds and SIGTERM.
``demo`` is left out: it starts embedded services of its own instead of the configured
ones (tests/demo covers it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

from support import ROOT, free_port

# Options a command cannot run without.
REQUIRED = {("indicators",): ["--period", "2026-11"], ("emissions",): ["--period", "2026-11"]}
SKIP = {("demo",)}
LONG_RUNNING = {("ingest",), ("run",)}
LONG_RUN_SECONDS = 20.0

# Runs each argv of the JSON list on stdin through parkcarbon.cli.main and prints, per
# command, the exit code and everything it wrote; an exception escaping main is
# reported with its traceback, as the console script would print it.
_RUNNER = """
import contextlib, io, json, sys, traceback
from parkcarbon.cli import main
results = []
for argv in json.load(sys.stdin):
    out = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc(file=out)
            code = 1
    results.append([code, out.getvalue()])
json.dump(results, sys.__stdout__)
"""


def leaf_commands() -> list[tuple[str, ...]]:
    from parkcarbon.cli import cli

    out: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, (*path, name))
            if isinstance(cmd, click.Group) and cmd.invoke_without_command and path:
                out.append(path)
        elif path not in SKIP:
            out.append(path)

    walk(cli, ())
    return out


def run_command(path: tuple[str, ...], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run one command as a process; a long-running one gets SIGTERM once it has logged
    that it runs (so the signal meets its handler) or after ``LONG_RUN_SECONDS``."""
    args = [*path, *REQUIRED.get(path, [])]
    proc = subprocess.Popen([sys.executable, "-m", "parkcarbon", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    running = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "ingest started:" in line:
                running.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if path in LONG_RUNNING:
        deadline = time.monotonic() + LONG_RUN_SECONDS * 3
        while proc.poll() is None and not running.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            time.sleep(2.0)  # what it logs once running (the broker check) is in by then
    else:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=90)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    reader.join(10)
    proc.stdout.close()
    return proc.returncode, "".join(lines)


def check_all(env: dict[str, str], cwd: Path,
              skip: frozenset[tuple[str, ...]] = frozenset()
              ) -> dict[tuple[str, ...], tuple[int, str]]:
    commands = [c for c in leaf_commands() if c not in skip]
    assert ("deadletters", "list") in commands and ("usage", "derive") in commands
    short = [c for c in commands if c not in LONG_RUNNING]
    with ThreadPoolExecutor(max_workers=3) as pool:
        long_runs = {c: pool.submit(run_command, c, env, cwd)
                     for c in commands if c in LONG_RUNNING}
        proc = subprocess.run([sys.executable, "-c", _RUNNER], env=env, cwd=cwd,
                              input=json.dumps([[*c, *REQUIRED.get(c, [])] for c in short]),
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = {c: (code, out) for c, (code, out) in
                   zip(short, json.loads(proc.stdout), strict=True)}
        results.update({c: f.result() for c, f in long_runs.items()})
    bad = {" ".join(c): out[-2000:] for c, (_, out) in results.items() if "Traceback" in out}
    assert not bad, bad
    return results


def base_env(dsn: str, mqtt_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKCARBON_")}
    env.update({
        "PARKCARBON_DATABASE_URL": dsn, "PARKCARBON_MQTT_PORT": str(mqtt_port),
        "PARKCARBON_METRICS_PORT": "0",
        "PARKCARBON_REGISTRY_FILE": str(ROOT / "config" / "park.yaml"),
        "PARKCARBON_TARGETS_FILE": str(ROOT / "config" / "targets.yaml"),
        "PARKCARBON_ECONOMICS_FILE": str(ROOT / "config" / "economics.yaml"),
        "PARKCARBON_CERTIFICATES_FILE": str(ROOT / "config" / "certificates.yaml"),
    })
    return env


def test_every_command_on_an_unmigrated_database(fresh_dsn: str, tmp_path: Path) -> None:
    # (`db migrate` is the cure: it would migrate the database under the others)
    results = check_all(base_env(fresh_dsn, free_port()), tmp_path,
                        skip=frozenset({("db", "migrate")}))
    for path in [("deadletters", "list"), ("usage", "derive"), ("emissions",), ("ingest",),
                 ("run",)]:
        code, out = results[path]
        assert code == 4, (path, out)
        assert "hint: run `parkcarbon db migrate`" in out, (path, out)
    for path in [("ingest",), ("run",)]:  # they stop at start instead of "database ok"
        assert "has no parkcarbon schema" in results[path][1]


def test_every_command_against_closed_ports(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there: PostgreSQL and the broker both refused
    results = check_all(base_env(f"postgresql://127.0.0.1:{port}/parkcarbon", port), tmp_path)
    code, out = results[("deadletters", "list")]
    assert code == 4 and "parkcarbon: error: cannot connect to postgresql://" in out
    # ingest says at once that neither the database nor the broker can be reached
    code, out = results[("ingest",)]
    assert "WARNING parkcarbon.ingest.service: database not reachable at start" in out, out
    assert f"WARNING parkcarbon.ingest.service: MQTT broker 127.0.0.1:{port} not reachable " \
           "at start" in out, out
    assert "database DOWN" in out  # the summary no longer says "database ok"
    code, out = results[("simulate",)]
    assert code == 5, out
