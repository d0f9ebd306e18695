"""Operating the installation: schema, demo data, and the web, worker and beat programs.

Web, worker and beat are started as their own programs (exec), so the CLI never imports
the adapters.
"""
from __future__ import annotations

import os
import sys

import click

from .app import main, services
from ..config import Settings


@main.command()
@click.pass_context
def migrate(ctx):
    """Create or upgrade the database schema."""
    from ..migrate import upgrade
    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    click.echo("database at head")


@main.command("seed-demo")
@click.pass_context
def seed_demo_cmd(ctx):
    """Create the demo offices and users and deploy both SOPs."""
    from ..demo import login_lines, seed_demo
    svc = services(ctx)
    with svc.sessions.begin() as session:
        logins = seed_demo(session, svc.runtime.store, svc.settings.data_dir / "demo-logins.json")
    click.echo("demo logins (username / password / who: office, role, lanes):")
    for line in login_lines(logins):
        click.echo(line)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, envvar="LAJUR_HOST")
@click.option("--port", default=5000, show_default=True, type=int, envvar="LAJUR_PORT")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes")
def web(host, port, workers):
    """Serve the web app: gunicorn behind nginx (engine/webserver.py), metrics in multi-process mode."""
    from ..metrics_dir import prepare_metrics_dir
    from ..webserver import serve
    settings = Settings.from_env()
    prepare_metrics_dir(settings, f"web-{port}")
    sys.exit(serve(settings.data_dir, host, port, workers))


# Sends are I/O-bound (two database commits and one SMTP/HTTP exchange each): on 2 cores,
# 2 children missed the 5 s p99 reminder target in bench/bench_deadlines.py (10.2 s), 4 met it.


WORKER_CONCURRENCY = 4


@main.command()
@click.option("--concurrency", default=WORKER_CONCURRENCY, show_default=True, type=int,
              help="worker child processes")
def worker(concurrency):
    """Run a Celery worker (reminders, notifications, timers)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", "worker",
                               "--loglevel", "INFO", "--concurrency", str(concurrency)])


@main.command()
def beat():
    """Run Celery beat (the deadline tick)."""
    os.execvp(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", "beat", "--loglevel", "INFO"])


@main.command()
@click.pass_context
def status(ctx):
    """Heartbeats of the deadline tick, beats and workers, and the outbox; exit 1 if one is silent."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ..heartbeat import report
    svc = services(ctx)
    with svc.engine.connect() as conn:
        lines, wrong = report(conn, svc.settings, datetime.now(ZoneInfo("UTC")))
    for line in lines:
        click.echo(line)
    if wrong:
        click.echo("error: " + "; ".join(wrong), err=True)
        ctx.exit(1)


@main.command("tick")
@click.pass_context
def tick(ctx):
    """Fire due BPMN timers once (what beat does every few seconds)."""
    svc = services(ctx)
    click.echo(f"{svc.runtime.run_due_timers()} instance(s) moved")
