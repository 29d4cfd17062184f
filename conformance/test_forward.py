"""Forward parity: outputs and final (h, c) equal the reference within the error model."""

from hypothesis import given
from hypothesis import strategies as st

from .rules import rules


@rules("GATE-1", "GATE-2", "GATE-3", "GATE-4", "STATE-4", "SHAPE-4", "NUM-1", "LAYOUT-1")
@given(data=st.data())
def test_forward_matches_reference(check, data):
    """Any supported config: outputs and every final state per layer and direction."""
    check.forward(data.draw(check.cases(mask=False, initial_state=False)))


@rules("ACT-30", "GATE-2")
@given(data=st.data())
def test_activation_choices_match_registry(check, data):
    """Each framework activation name computes the registry function the adapter maps it to."""
    registry = sorted(set(check.adapter.capabilities.activations.values()))
    act = data.draw(st.sampled_from(registry), label="activation")
    ract = data.draw(st.sampled_from(registry), label="recurrent_activation")
    case = data.draw(check.cases(fixed={"activation": act, "recurrent_activation": ract, "num_layers": 1},
                                 mask=False, initial_state=False, max_timesteps=16))
    check.forward(case, property_="activations")


@rules("SHAPE-1", "SHAPE-2", "SHAPE-3", "SHAPE-4", "SHAPE-5", "SHAPE-6")
@given(data=st.data())
def test_output_shapes_match_spec(check, data):
    check.shapes(data.draw(check.cases(max_timesteps=8)))


@rules("PARAM-1", "PARAM-2", "PARAM-3", "PARAM-5")
@given(data=st.data())
def test_param_count_matches_convention(check, data):
    check.params(data.draw(check.cases(max_timesteps=2, mask=False, initial_state=False)))
