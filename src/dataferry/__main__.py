"""``python -m dataferry``, the same as the ``dataferry`` command."""

from .cli.main import main

main()
