"""What event webhooks cost the completion hot path (PostgreSQL, one process).

The deliveries of an event are recorded in the unit of work's own batch (engine/uow.py,
engine/webhooks/events.py): one INSERT ... SELECT per event row, no extra round trip. This
runs DPMK instances end to end (start + 5 completions) in rounds, alternating three modes so
the machine's speed swings hit each alike:
  off   - the event statement removed (the code before webhooks: the reference);
  none  - the office has no subscription (the statement runs and inserts nothing);
  one   - the office has one subscription to every event (a delivery row per event).
Prints completions/s per mode (median of the rounds) and the ratio to `off`; then the event
statement alone against a primary-key SELECT, per execution in one pipeline.

Run: .venv/bin/python bench/bench_webhooks.py [--instances 60] [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, update  # noqa: E402

from bench.bench_engine import engine_run  # noqa: E402
from bench.common import machine, scratch_database  # noqa: E402
from engine.accounts import office_by_code  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade  # noqa: E402
from engine.models import User, WebhookSubscription  # noqa: E402
from engine.services import Services, tune_gc  # noqa: E402
from engine.webhooks import events, subscriptions  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tune_gc()
    print(f"machine: {machine()}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    with scratch_database("lajur_bench_webhooks") as url:
        upgrade(url)
        settings = Settings(database_url=url, broker_url="memory://", data_dir=Path("/tmp/lajur-bench-webhooks"),
                            base_url="http://127.0.0.1:5000")
        services = Services.from_settings(settings)
        with services.sessions.begin() as session:
            seed_demo(session, services.runtime.store, settings.data_dir / "logins.json")
            sub, _ = subscriptions.add(session, settings, office_by_code(session, "dpmk").id,
                                       "https://receiver.example/hook", list(events.EVENTS), "", None,
                                       datetime.now(timezone.utc))
            sub_id = sub.id
        with services.sessions() as session:
            users = {u.username: u.id for u in session.scalars(select(User))}
        real_rows = events.delivery_rows

        def mode(name: str) -> None:
            events.delivery_rows = real_rows if name != "off" else (lambda audits: [])
            with services.sessions.begin() as session:
                session.execute(update(WebhookSubscription).where(WebhookSubscription.id == sub_id)
                                .values(active=name == "one"))

        engine_run(services, users, 5, claim=False)  # warm
        rates: dict[str, list[float]] = {"off": [], "none": [], "one": []}
        for _ in range(args.rounds):
            for name in rates:
                mode(name)
                seconds, n = engine_run(services, users, args.instances, claim=False)
                rates[name].append(n / seconds)
        events.delivery_rows = real_rows
        with services.sessions() as session:
            from engine.models import Delivery
            recorded = session.query(Delivery).filter(Delivery.subscription_id == sub_id).count()
        print(f"{args.rounds} rounds x {args.instances} DPMK instances (start + 5 completions) per mode; "
              f"{recorded} event deliveries recorded in mode 'one'")
        base = statistics.median(rates["off"])
        for name, values in rates.items():
            med = statistics.median(values)
            print(f"  {name:5} {med:8.1f} completions/s (median; rounds {', '.join(f'{v:.0f}' for v in values)}) "
                  f"ratio {med / base:.3f}")
        statement_cost(services)
        services.dispose()


def statement_cost(services: Services, n: int = 2000) -> None:
    """The event statement alone: n executions in one pipeline, for an office without a
    subscription, against the same number of a one-row SELECT by primary key (what each of
    the batch's other statements costs at least)."""
    import time

    from sqlalchemy import bindparam, select as sel

    from engine.models import Office
    from engine.sqltx import SqlTx, Stmt
    probe = Stmt(sel(Office.__table__.c.id).where(Office.__table__.c.id == bindparam("office")))
    now = datetime.now(timezone.utc)
    row = {"office": 999999, "pattern": "%,step.completed,%", "event": "step.completed", "event_id": "msg_x",
           "payload": {"type": "step.completed"}, "at": now}
    timings = {}
    for name, stmt, params in (("event INSERT ... SELECT, no subscription", events.INSERT_DELIVERIES, row),
                               ("SELECT by primary key (reference)", probe, {"office": 1})):
        best = float("inf")
        for _ in range(3):
            with services.sessions.begin() as session:
                tx = SqlTx(session)
                tx.batch([(stmt, params)])  # prepared
                t0 = time.perf_counter()
                tx.batch([(stmt, params)] * n)
                best = min(best, time.perf_counter() - t0)
                session.rollback()
        timings[name] = best / n * 1e6
    for name, us in timings.items():
        print(f"  {name:42} {us:7.1f} us per execution in a pipeline of {n}")


if __name__ == "__main__":
    main()
