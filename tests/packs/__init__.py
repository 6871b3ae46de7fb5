"""Tests of paxd.packs."""
