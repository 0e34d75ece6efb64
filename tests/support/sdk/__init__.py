"""Helpers for the Restcomm Python SDK compatibility tests (our code only; the SDK is never vendored)."""
