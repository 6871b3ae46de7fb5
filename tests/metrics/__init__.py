"""Tests for paxd.metrics."""
