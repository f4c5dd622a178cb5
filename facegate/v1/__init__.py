"""Generated from proto/facegate/v1 by tools/genproto.py; do not edit."""
