"""`lajur web`: gunicorn behind nginx, started and stopped together.

gunicorn's sync workers are the right model for this app (CPU-bound requests, a
database session each), but a sync worker reads its request itself: a client that sends
its headers slowly holds the worker the whole time, and a few such clients take the
site offline. nginx in front reads every request completely and buffers every response,
so gunicorn only ever sees whole requests from a local, fast peer (see
engine/nginx.conf.template, the one place the front's rules are written).

Layout in the data directory: run/<port>/nginx.conf (rendered), run/<port>.sock (the app,
reachable only through the socket's file permissions), run/* temp dirs, log/*.log.
No Flask import here: this module only writes a file and supervises two programs.
"""
from __future__ import annotations

import getpass
import grp
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .errors import LajurError

TEMPLATE = Path(__file__).with_name("nginx.conf.template")
MAX_BODY = "210m"  # webui: 4 evidence files of 50 MB per post plus the form
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def nginx_binary() -> str:
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise LajurError("nginx is not installed (Debian: apt-get install nginx-light); `lajur web` serves "
                     "through it so that slow clients cannot hold the app's workers")


def render(template: str, values: dict[str, str]) -> str:
    """Fill each {{name}}; a placeholder left over is an error, not a broken config."""
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    if "{{" in template:
        left = template[template.index("{{"):].split("}}", 1)[0] + "}}"
        raise LajurError(f"nginx template: no value for {left}")
    return template


def write_config(data_dir: Path, host: str, port: int, workers: str = "auto") -> tuple[Path, Path]:
    """Render the front's config into data_dir/run/<port>; return (config path, gunicorn socket path
    data_dir/run/<port>.sock).

    One run directory per port: several web nodes may share a data directory (and its
    evidence files), and each needs its own nginx pid, temp files and gunicorn socket."""
    run_dir, log_dir = Path(data_dir) / "run" / str(port), Path(data_dir) / "log"
    for d in (run_dir, log_dir):
        d.mkdir(parents=True, exist_ok=True)
    socket = run_dir.parent / f"{port}.sock"  # short: a unix socket path has ~100 bytes
    if len(str(socket)) > 100:
        raise LajurError(f"data directory path too long for a unix socket: {socket}")
    user_directive = ""
    if os.geteuid() == 0:  # nginx would switch its workers to `nobody`: keep them the current user
        user_directive = f"user {getpass.getuser()} {grp.getgrgid(os.getegid()).gr_name};"
    mime = Path("/etc/nginx/mime.types")
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    config = render(TEMPLATE.read_text(encoding="utf-8"), {
        "user_directive": user_directive, "worker_processes": workers, "run_dir": str(run_dir),
        "log_dir": str(log_dir), "mime_types": str(mime) if mime.exists() else "/dev/null",
        "max_body": MAX_BODY, "upstream": f"unix:{socket}", "listen": listen})
    path = run_dir / "nginx.conf"
    path.write_text(config, encoding="utf-8")
    return path, socket


def serve(data_dir: Path, host: str, port: int, workers: int = 2) -> int:
    """Run gunicorn (on a unix socket) and nginx (on host:port) until either ends or a signal comes."""
    nginx = nginx_binary()
    config, socket = write_config(data_dir, host, port)
    check = subprocess.run([nginx, "-t", "-q", "-c", str(config), "-p", str(config.parent)], capture_output=True,
                           text=True)
    if check.returncode != 0:
        raise LajurError(f"nginx config invalid: {check.stderr.strip().splitlines()[-1:]}")
    if socket.exists():
        socket.unlink()
    env = dict(os.environ, LAJUR_PROXY_HOPS="1")  # the app reads the client address from X-Forwarded-For
    app = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:webui.gunicorn_conf", "-w", str(workers), "-b", f"unix:{socket}",
                            "--umask", "0o077", "--control-socket", str(socket.with_suffix(".ctl")),
                            "--access-logfile", "-", "webui.wsgi:app"], env=env)
    front = subprocess.Popen([nginx, "-c", str(config), "-p", str(config.parent)])
    children = (app, front)
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGQUIT if child is front else signal.SIGTERM)  # both: graceful stop
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    return 0 if stopping else 1
