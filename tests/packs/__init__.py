"""Tests of paxd.packs: the pack format and the version order, as the daemon uses them."""
