"""Entry point for gunicorn: `gunicorn webui.wsgi:app` (settings come from the environment)."""
from engine.services import tune_gc
from webui import create_app

app = create_app()
tune_gc()
