"""facegate: self-hosted face identification, wire-compatible with NEC ID v1.1."""

__version__ = "0.1.0"
