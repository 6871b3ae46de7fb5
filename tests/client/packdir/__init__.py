"""Tests of paxctl's pack directories (paxd.client.packdir)."""
