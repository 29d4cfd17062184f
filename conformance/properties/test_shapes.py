"""spec/shapes.md: output and state shapes (SHAPE-*) equal reference.output_shapes; no values compared."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("SHAPE-1", "SHAPE-2", "SHAPE-3", "SHAPE-4", "SHAPE-5", "SHAPE-6")
@given(data=st.data())
def test_output_shapes_match_spec(check, data):
    check.shapes(data.draw(check.cases(max_timesteps=8)))
