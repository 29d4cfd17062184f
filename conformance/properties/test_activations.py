"""spec/activations.md: each framework activation name computes the registry function it maps to (ACT-*)."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("ACT-30", "GATE-2")
@given(data=st.data())
def test_activation_choices_match_registry(check, data):
    """Every pair of the adapter's activations, as activation and recurrent_activation."""
    registry = sorted(set(check.adapter.capabilities.activations.values()))
    act = data.draw(st.sampled_from(registry), label="activation")
    ract = data.draw(st.sampled_from(registry), label="recurrent_activation")
    case = data.draw(check.cases(fixed={"activation": act, "recurrent_activation": ract, "num_layers": 1},
                                 mask=False, initial_state=False, max_timesteps=16))
    check.forward(case)
