"""``python -m paxd.client``: run paxctl."""

import sys

from paxd.client.cli import main

sys.exit(main())
