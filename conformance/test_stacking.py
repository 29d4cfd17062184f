"""Stacked layers and projection."""

from hypothesis import given
from hypothesis import strategies as st

from .rules import rules


@rules("STACK-1", "PARAM-5")
@given(data=st.data())
def test_stacked_layers(check, data):
    check.require("num_layers")
    n = data.draw(st.integers(2, min(3, check.adapter.capabilities.max_layers)), label="num_layers")
    check.forward(data.draw(check.cases(fixed={"num_layers": n}, max_timesteps=32)), property_="stacked")


@rules("PROJ-1", "SHAPE-6")
@given(data=st.data())
def test_projection(check, data):
    check.require("proj_size")
    units = data.draw(st.integers(2, 32), label="units")
    p = data.draw(st.integers(1, units - 1), label="proj_size")
    check.forward(data.draw(check.cases(fixed={"units": units, "proj_size": p}, max_timesteps=32)),
                  property_="projection")


@rules("PEEP-1", "CLIP-1", "IFG-1")
@given(data=st.data())
def test_onnx_cell_options(check, data):
    opts = [o for o in ("peepholes", "cell_clip", "input_forget") if o in check.adapter.capabilities.options]
    if not opts:
        check.require("peepholes")
    which = data.draw(st.sampled_from(opts), label="option")
    value = data.draw(st.sampled_from([0.5, 2.0]), label="clip") if which == "cell_clip" else True
    check.forward(data.draw(check.cases(fixed={which: value}, max_timesteps=32)), property_=which)
