"""`lajur webhooks` as an operator uses it (embedded SQLite): the secret printed once on
stdout, the list without secrets, an event recorded by a CLI completion in the log, refusals
as one line on stderr with a non-zero exit."""
from __future__ import annotations

from .sopdata import DPMK
from .test_cli import run  # noqa: F401 - the fixture


def test_add_list_log_and_remove(run):
    added = run("webhooks", "add", "dpmk", "https://wa-gateway.example/lajur", "--event", "instance.started",
                "--description", "Gateway WhatsApp")
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "webhook #1 for dpmk" in added.stderr and "shown once" in added.stderr
    listing = run("webhooks", "list", "dpmk").stdout
    assert "#1" in listing and "wa-gateway.example" in listing and "instance.started" in listing
    assert secret not in listing and secret[6:12] in listing
    assert run("webhooks", "list", "dinsos").stdout == ""
    run("start", "dpmk.penerima", DPMK, "--subject", "Lewat CLI")
    log = run("webhooks", "log", "1").stdout
    assert "instance.started" in log and "pending" in log and "attempt -" in log
    refused = run("webhooks", "resend", "1", "1", ok=False)
    assert refused.returncode == 1 and refused.stderr.strip() == "error: this delivery is already queued"
    assert "paused" in run("webhooks", "pause", "1").stdout
    assert "paused" in run("webhooks", "list", "dpmk").stdout
    rotated = run("webhooks", "rotate", "1").stdout.strip()
    assert rotated.startswith("whsec_") and rotated != secret
    assert "removed" in run("webhooks", "remove", "1").stdout
    assert run("webhooks", "list", "dpmk").stdout == ""


def test_refusals_are_one_line_and_non_zero(run):
    for args, message in [
        (("webhooks", "add", "dpmk", "ftp://x.example/"), "http:// or https://"),
        (("webhooks", "add", "nowhere", "https://x.example/"), "nowhere"),
        (("webhooks", "remove", "42"), "webhook 42 does not exist"),
        (("webhooks", "log", "42"), "webhook 42 does not exist"),
    ]:
        proc = run(*args, ok=False)
        assert proc.returncode != 0 and message in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
