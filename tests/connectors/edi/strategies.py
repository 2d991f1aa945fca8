"""Hypothesis strategies for writer round trips."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st


def _check_digit(body: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


gtins = st.sampled_from([11, 12, 13]).flatmap(
    lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n).map(
        lambda body: body + _check_digit(body)
    )
)
codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-./", min_size=1, max_size=15)
prices = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False).map(
    lambda d: format(d.quantize(Decimal("0.01")), "f")
)
quantities = st.decimals(min_value=-(10**5), max_value=10**5, places=3, allow_nan=False).map(
    lambda d: format(d.quantize(Decimal("0.001")), "f")
)
dates = st.dates().map(lambda d: d.strftime("%Y%m%d")).filter(lambda s: len(s) == 8)


def texts(forbidden: str) -> st.SearchStrategy[str]:
    """Free text without control characters or the given characters."""
    return st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs"), blacklist_characters=forbidden, max_codepoint=0x2FF
        ),
        min_size=1,
        max_size=40,
    )
