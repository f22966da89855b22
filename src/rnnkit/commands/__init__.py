"""Sub-commands of the ``rnnkit`` CLI (see :mod:`rnnkit.cli`)."""
