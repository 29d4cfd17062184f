"""spec/options.md, stacking and projection (STACK-*, PROJ-*)."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("STACK-1", "PARAM-5")
@given(data=st.data())
def test_stacked_layers(check, data):
    check.require("num_layers")
    n = data.draw(st.integers(2, min(3, check.adapter.capabilities.max_layers)), label="num_layers")
    check.forward(data.draw(check.cases(fixed={"num_layers": n}, max_timesteps=32)))


@rules("PROJ-1", "SHAPE-6")
@given(data=st.data())
def test_projection(check, data):
    check.require("proj_size")
    units = data.draw(st.integers(2, 32), label="units")
    p = data.draw(st.integers(1, units - 1), label="proj_size")
    check.forward(data.draw(check.cases(fixed={"units": units, "proj_size": p}, max_timesteps=32)))
