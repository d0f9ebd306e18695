"""`lajur backup` and `lajur restore` (engine/backup.py, commands in engine/backup_cli.py)."""
from ..backup_cli import register
from .app import main

register(main)
