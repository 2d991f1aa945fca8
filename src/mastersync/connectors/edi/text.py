"""Turning EDI bytes into text: UTF-8 first (with or without a BOM), then a single-byte codec."""

from __future__ import annotations

import codecs

BOM = "\ufeff"


def decode_edi_bytes(data: bytes, fallback: str = "latin-1") -> str:
    """Decode EDI bytes as UTF-8 (a BOM is dropped), falling back to `fallback` (latin-1)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # latin-1 maps every byte, so the reader always gets text and can report bad characters.
        return data.decode(fallback, errors="replace")
