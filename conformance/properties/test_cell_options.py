"""spec/options.md, the ONNX cell options: peepholes (PEEP-*), cell clip (CLIP-*), input_forget (IFG-*)."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules


@rules("PEEP-1", "CLIP-1", "IFG-1")
@given(data=st.data())
def test_onnx_cell_options(check, data):
    opts = [o for o in ("peepholes", "cell_clip", "input_forget") if o in check.adapter.capabilities.options]
    if not opts:
        check.require("peepholes")
    which = data.draw(st.sampled_from(opts), label="option")
    value = data.draw(st.sampled_from([2.0, 0.5]), label="clip") if which == "cell_clip" else True
    # each option alone, so a failure implicates that option's rule and nothing else
    alone = {"peepholes": False, "cell_clip": None, "input_forget": False, which: value}
    check.forward(data.draw(check.cases(fixed=alone, max_timesteps=32)))
