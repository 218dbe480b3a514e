"""``python -m froster ...`` runs the ``froster`` command (and ``torchrun -m froster ...`` too)."""
import sys

from froster.cli import main

sys.exit(main())
