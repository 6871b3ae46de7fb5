"""paxd: a pack registry daemon speaking Docker distribution's API under /v1/ and /v2/."""

__version__ = "0.1.0"
