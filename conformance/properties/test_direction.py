"""Direction: go_backwards and bidirectional merge modes."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("DIR-1", "DIR-2")
@given(data=st.data())
def test_go_backwards_output_in_processing_order(check, data):
    check.require("go_backwards")
    check.forward(data.draw(check.cases(fixed={"go_backwards": True, "bidirectional": False})))


@rules("BIDI-1", "BIDI-2", "BIDI-3", "SHAPE-5")
@given(data=st.data())
def test_bidirectional_merge_modes(check, data):
    """Every merge mode the adapter has, with and without return_sequences (drawn on purpose: the last
    output of a merge takes the backward direction's first step)."""
    check.require("bidirectional")
    mode = data.draw(st.sampled_from(check.adapter.capabilities.merge_modes), label="merge_mode")
    sequences = data.draw(st.booleans(), label="return_sequences")
    check.forward(data.draw(check.cases(fixed={"bidirectional": True, "merge_mode": mode,
                                               "return_sequences": sequences})))
