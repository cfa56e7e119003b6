"""``python -m flows`` is the ``clickstream`` command."""

from flows.cli import main

main()
