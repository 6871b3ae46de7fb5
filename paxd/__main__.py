"""``python -m paxd`` is the ``paxd`` command."""

import sys

from paxd.cli import main

sys.exit(main())
