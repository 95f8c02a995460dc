"""``python -m dataferry``, the same as the ``dataferry`` command."""

from .cli.entry import main

main()
