"""Lajur's domain: SOP processes on SpiffWorkflow, persisted with SQLAlchemy.

Nothing here imports Flask or Celery; `webui` and `workers` are thin adapters over it.
"""
