"""spec/gradients.md: the framework's own autodiff (GRAD-*) against the reference backward pass, judged per
gradient tensor by the error model (input, every initial h and c, every weight tensor, and the call's outputs).

Each case carries its cotangents as a seed (``cotangent_seed``) and which part of the loss they weight
(``cotangents``: the outputs and final states, only the outputs, only the final states), so a repro blob
replays the same loss. An adapter without gradients (an inference runtime) is skipped with its reason.
"""

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from reference import CLIP_READINGS

from ..harness.rules import rules

#: gradient cases stay short: the reference backward pass and its oracles cost several forward passes each
MAX_TIMESTEPS = 32
#: the loss weights outputs and final states (the shrink target), only the outputs, or only the final states
COTANGENTS = ("all", "output", "states")


def with_cotangents(data, case, **extra):
    """The case with its cotangents drawn (seed and which part of the loss), and ``extra`` in its description."""
    seed = data.draw(st.integers(0, 2**32 - 1), label="cotangent_seed")
    which = data.draw(st.sampled_from(COTANGENTS), label="cotangents")
    return dataclasses.replace(case, extra={**case.extra, "cotangent_seed": seed, "cotangents": which, **extra})


@rules("GRAD-1")
@given(data=st.data())
def test_gradients_match_reference(check, data):
    """Any supported config without masks or clip: d/dx, d/dh0, d/dc0 and every weight gradient."""
    check.require_gradients()
    case = data.draw(check.cases(mask=False, fixed={"cell_clip": None}, max_timesteps=MAX_TIMESTEPS,
                                 long_sequences=False))
    check.gradients(with_cotangents(data, case))


@rules("GRAD-2")
@given(data=st.data())
def test_masked_steps_pass_gradients_through(check, data):
    """Right-padded or arbitrary masks (fully masked rows where allowed): a masked step's input gets 0 and
    adds nothing to the weights; the state gradient passes through it."""
    check.require_gradients()
    check.require("mask") if "lengths" not in check.adapter.capabilities.options else None
    case = data.draw(check.cases(mask=True, fixed={"cell_clip": None}, max_timesteps=MAX_TIMESTEPS,
                                 long_sequences=False))
    check.gradients(with_cotangents(data, case))


@rules("GRAD-3")
@given(data=st.data())
def test_gradients_chain_through_carried_state(check, data):
    """Two calls with the state carried (the second call's h0/c0 gradients as the first call's g_h/g_c) give
    one call's gradients over the joined sequence."""
    check.require_gradients()
    check.require("initial_state")
    case = data.draw(check.cases(mask=False, timesteps=(2, MAX_TIMESTEPS), long_sequences=False,
                                 fixed={"go_backwards": False, "bidirectional": False, "return_sequences": True,
                                        "cell_clip": None}))
    split = data.draw(st.integers(1, case.x.shape[1] - 1), label="split")
    check.chained_gradients(with_cotangents(data, case), split)


@rules("GRAD-4")
@given(data=st.data())
def test_clip_subgradient(check, data):
    """A cell clip under each CLIP-1 reading: clip' is 1 strictly inside the bounds and 0 at and beyond them
    (cases within K oracle deviations of a bound are inconclusive)."""
    check.require_gradients()
    check.require("cell_clip")
    clip = data.draw(st.sampled_from([3.0, 1.0, 0.5]), label="cell_clip")
    reading = data.draw(st.sampled_from(CLIP_READINGS), label="clip_reading")
    case = data.draw(check.cases(fixed={"cell_clip": clip, "clip_reading": reading}, max_timesteps=MAX_TIMESTEPS,
                                 long_sequences=False))
    check.gradients(with_cotangents(data, case))
