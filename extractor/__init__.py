"""Extractor service: image bytes -> faces (decode, detect, align, embed)."""
