"""Small helpers for messages people read."""

from __future__ import annotations


def a_or_an(noun: str) -> str:
    """``noun`` with its indefinite article: "a customer", "an item", "an inventory"."""
    return ("an " if noun[:1].lower() in tuple("aeiou") else "a ") + noun
