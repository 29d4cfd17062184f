"""Framework defaults: a fresh layer's initialisation and default activations."""

from hypothesis import given
from hypothesis import strategies as st

from reference import Config

from ..harness.rules import rules


@rules("DEF-1", "DEF-2")
@given(units=st.integers(1, 16), input_dim=st.integers(1, 16))
def test_fresh_layer_defaults(check, units, input_dim):
    check.require("defaults")
    check.defaults(Config(input_dim=input_dim, units=units))
