"""Conformance against the real OpenClaw gateway (``make conformance``; docs/CONFORMANCE.md)."""
