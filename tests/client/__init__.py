"""Tests of paxctl (paxd.client)."""
