"""The REST API, /api/v1 (issue 13): see base.py for how it authenticates and reaches the engine."""
from . import calendar, dashboard, instances, notifications, openapi, processes, tasks  # noqa: F401  (routes)
from .base import bp

__all__ = ["bp"]
