"""``python -m rnnkit``: the command line (what ``torchrun --nproc-per-node N -m rnnkit train ...`` runs)."""

from rnnkit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
