"""`python -m engine.cli`: the same command as the `lajur` script."""
from . import main

main()
