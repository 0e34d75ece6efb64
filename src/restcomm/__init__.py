"""Restcomm-compatible communications platform."""

__version__ = "0.1.0"
