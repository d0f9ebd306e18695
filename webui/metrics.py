"""Prometheus metrics at `/metrics`: requests and latency by route, completions, and the
service's backlog read from the database at scrape time.

Per request (counted in the process that served it): `lajur_http_requests_total` and the
`lajur_http_request_duration_seconds` histogram by route, the URL rule (`/tasks/<int:task_id>`,
never the raw path, so label values stay few), and `lajur_step_completions_total`.
Under gunicorn every worker is its own process: with PROMETHEUS_MULTIPROC_DIR set (`lajur web`
sets and empties it, and gunicorn's child_exit hook marks dead workers, webui/gunicorn_conf.py)
the values live in files there and a scrape of any worker adds them all up.

At scrape time, from the database (the same figures whichever worker answers): the tick lag
(how long the oldest due reminder has waited unfired), the outbox depth (deliveries waiting or
being sent), failed deliveries, and open incidents (0 while no `incident` table exists).

Access: with LAJUR_METRICS_TOKEN set, a request must carry `Authorization: Bearer <token>`;
without it only a direct loopback client may read (not one forwarded by the front, which
also refuses /metrics itself: deploy/nginx/lajur.conf).
"""
from __future__ import annotations

import hmac
import os
import time
from datetime import datetime, timezone

from flask import Flask, Response, abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import inspect, text

from engine import heartbeat

LOOPBACK = {"127.0.0.1", "::1"}
FORWARDED = ("X-Forwarded-For", "X-Real-IP", "Forwarded")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMPLETE_ENDPOINT = "tasks.submit"


class RequestMetrics:
    """The per-request metrics of one app, in its own registry (several apps in one test
    process do not collide); in multi-process mode their values go to the shared files."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("lajur_http_requests_total", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("lajur_http_request_duration_seconds", "Request latency by route",
                                 ["route"], buckets=BUCKETS, registry=self.registry)
        # live: a worker that dies mid-request must not count forever (gunicorn_conf.child_exit)
        self.in_progress = Gauge("lajur_http_requests_in_progress", "Requests being served",
                                 multiprocess_mode="livesum", registry=self.registry)
        self.completions = Counter("lajur_step_completions_total", "Steps completed through the web",
                                   registry=self.registry)


class DatabaseCollector:
    """Backlog gauges read at scrape time: cheap, index-backed queries (deadline by status and
    due time, delivery by status), so a scrape every 15 s costs the database next to nothing."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        now = datetime.now(timezone.utc)
        with self.engine.connect() as conn:  # the figures of `lajur status` and the status page (engine.heartbeat)
            lag = heartbeat.tick_lag(conn, now)
            by_status = heartbeat.outbox_depth(conn)
            incidents = open_incidents(conn)
        yield GaugeMetricFamily("lajur_tick_lag_seconds", "How long the oldest due reminder has waited unfired",
                                value=lag)
        yield GaugeMetricFamily("lajur_outbox_depth", "Deliveries waiting to be sent or being sent",
                                value=by_status.get("pending", 0) + by_status.get("sending", 0))
        yield GaugeMetricFamily("lajur_deliveries_failed", "Deliveries that gave up after their retries",
                                value=by_status.get("failed", 0))
        yield GaugeMetricFamily("lajur_incidents_open", "Open incidents", value=incidents)


def open_incidents(conn) -> int:
    """Open incidents, from the `incident` table when this installation has one."""
    insp = inspect(conn)
    if not insp.has_table("incident"):
        return 0
    columns = {c["name"] for c in insp.get_columns("incident")}
    if "resolved_at" in columns:
        return conn.execute(text("SELECT count(*) FROM incident WHERE resolved_at IS NULL")).scalar_one()
    if "status" in columns:
        return conn.execute(text("SELECT count(*) FROM incident WHERE status = 'open'")).scalar_one()
    return conn.execute(text("SELECT count(*) FROM incident")).scalar_one()


def init_app(app: Flask) -> None:
    metrics = RequestMetrics()
    app.extensions["lajur_metrics"] = metrics

    @app.before_request
    def _start_timer():
        if request.endpoint != "lajur_metrics":  # a scrape does not count itself
            g.lajur_t0 = time.perf_counter()
            g.lajur_in_progress = True
            metrics.in_progress.inc()

    @app.after_request
    def _observe(response):
        t0 = g.pop("lajur_t0", None)
        if t0 is None:
            return response
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - t0)
        if (request.endpoint == COMPLETE_ENDPOINT and request.method == "POST" and 300 <= response.status_code < 400
                and request.form.get("action") != "draft"):
            metrics.completions.inc()  # the step page redirects only after a completion (or a draft)
        return response

    @app.teardown_request
    def _done(_exc):  # runs even when a view raised and no response passed through after_request
        if g.pop("lajur_in_progress", False):
            metrics.in_progress.dec()

    @app.get("/metrics", endpoint="lajur_metrics")
    def scrape():
        _authorise()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess
            requests = multiprocess.MultiProcessCollector(None)  # every worker's files, added up
        else:
            requests = metrics.registry
        body = generate_latest(_Joined(requests, DatabaseCollector(current_app.extensions["lajur"].engine)))
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


class _Joined:
    """Several collectors as the one registry generate_latest reads."""

    def __init__(self, *sources):
        self.sources = sources

    def collect(self):
        for source in self.sources:
            yield from source.collect()


def _authorise() -> None:
    token = current_app.extensions["lajur"].settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            abort(401)
        return
    if request.remote_addr not in LOOPBACK or any(h in request.headers for h in FORWARDED):
        abort(403)
