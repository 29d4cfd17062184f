"""spec/numerics.md: the layer computes in the dtype it declares (NUM-5), judged on well-conditioned cases
(the TYPICAL regime: framework-default weight scales, bounded activations, short sequences), where the
reference itself keeps nearly every mantissa bit, so a float32 layer computing in float16, bfloat16 or with
TF32 matmuls shows its lost bits instead of hiding below a loose oracle."""

from hypothesis import given
from hypothesis import strategies as st

from ..harness.rules import rules
from ..harness.strategies import TYPICAL


@rules("NUM-5")
@given(data=st.data())
def test_layer_computes_in_its_declared_dtype(check, data):
    case = data.draw(check.cases(regime=TYPICAL, mask=False, initial_state=False, max_timesteps=16,
                                 fixed={"num_layers": 1, "activation": "tanh", "recurrent_activation": "sigmoid",
                                        "peepholes": False, "cell_clip": None, "input_forget": False}))
    check.precision(case)
