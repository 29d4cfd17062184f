"""State handling: initial state, carried state across calls, stateful layers."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("STATE-1", "BIDI-3")
@given(data=st.data())
def test_initial_state_is_used(check, data):
    check.require("initial_state")
    check.forward(data.draw(check.cases(initial_state=True, mask=False)))


@rules("STATE-2")
@given(data=st.data())
def test_two_calls_with_carried_state_equal_one_call(check, data):
    check.require("initial_state")
    case = data.draw(check.cases(mask=False, fixed={"go_backwards": False, "bidirectional": False}, max_timesteps=32))
    split = data.draw(st.integers(0, case.x.shape[1] - 1), label="split")
    if split == 0:
        split = 1 if case.x.shape[1] > 1 else 0
    if split == 0:
        return check.forward(case)
    check.continuation(case, split, stateful=False)


@rules("STATE-3")
@given(data=st.data())
def test_stateful_layer_continues_across_calls(check, data):
    check.require("stateful")
    case = data.draw(check.cases(mask=False, initial_state=False,
                                 fixed={"go_backwards": False, "bidirectional": False}, max_timesteps=32))
    if case.x.shape[1] < 2:
        return check.forward(case)
    split = data.draw(st.integers(1, case.x.shape[1] - 1), label="split")
    check.continuation(case, split, stateful=True)
