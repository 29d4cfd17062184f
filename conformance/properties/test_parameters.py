"""spec/parameters.md: the framework's own parameter count equals its convention's formula (PARAM-*)."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("PARAM-1", "PARAM-2", "PARAM-3", "PARAM-4", "PARAM-5")
@given(data=st.data())
def test_param_count_matches_convention(check, data):
    check.require_param_count()
    check.params(data.draw(check.cases(max_timesteps=2, mask=False, initial_state=False)))
