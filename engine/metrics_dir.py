"""The directory where gunicorn's workers keep their Prometheus values (multi-process mode).

`lajur web` calls this before it execs gunicorn: PROMETHEUS_MULTIPROC_DIR defaults to
`$LAJUR_DATA_DIR/metrics/<port or name>` and is emptied, because files left by a previous run
(or by dead workers) would otherwise be added to the new run's totals. One directory per
web node: two nodes on one machine must not share (each empties its own at start).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .config import Settings


def prepare_metrics_dir(settings: Settings, node: str = "web") -> Path:
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.data_dir / "metrics" / node)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path
