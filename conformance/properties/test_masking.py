"""Masking and sequence lengths."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("MASK-1", "MASK-2", "MASK-3")
@given(data=st.data())
def test_masked_steps_keep_state(check, data):
    """Per-sample masks (right-padded or arbitrary, fully masked rows included) and the masked-output rule."""
    check.require("mask") if "lengths" not in check.adapter.capabilities.options else None
    check.forward(data.draw(check.cases(mask=True)))
