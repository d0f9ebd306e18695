"""Entry point for gunicorn: `gunicorn webui.wsgi:app` (settings come from the environment)."""
from webui import create_app

app = create_app()
