"""spec/training.md: layers built with dropout, in inference and in training mode (TRAIN-*).

Keras' ``dropout`` acts on each layer's inputs and ``recurrent_dropout`` on its recurrent state; torch's
``dropout`` between stacked layers only (no recurrent dropout: the adapter refuses it, and those draws are
rejected). An adapter without dropout (an inference runtime, the numpy reference) is skipped with its reason.
"""

import dataclasses

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from reference import Config, random_weights

from ..harness.rules import rules
from ..harness.strategies import Case

#: training-mode cases stay short: a gradient call and the reference's oracles per case
MAX_TIMESTEPS = 32
#: rates drawn for TRAIN-1/TRAIN-3 (0 for one of the two options in some draws)
RATES = (0.0, 0.1, 0.25, 0.5)
#: TRAIN-4's probe (spec/training.md): one sequence, long enough that a per-step mask leaves no zero column
#: input_dim and units 16: one mask of 16 inputs (dropout) or 16 units (recurrent_dropout) may be shared by the
#: four gates (implementation=2), so "no zero column" under per-sequence has chance 2^-16 on either branch
PROBE = dict(batch=1, timesteps=24, input_dim=16, units=16, rate=0.5)


def _rates(data, *, both_zero: bool = False) -> dict:
    """(dropout, recurrent_dropout), at least one of them > 0 unless ``both_zero``."""
    if both_zero:
        return dict(dropout=0.0, recurrent_dropout=0.0)
    p = data.draw(st.sampled_from(RATES), label="dropout")
    q = data.draw(st.sampled_from(RATES if p > 0 else RATES[1:]), label="recurrent_dropout")
    return dict(dropout=p, recurrent_dropout=q)


def _with_cotangents(data, case: Case) -> Case:
    seed = data.draw(st.integers(0, 2**32 - 1), label="cotangent_seed")
    return dataclasses.replace(case, extra={**case.extra, "cotangent_seed": seed})


@rules("TRAIN-1")
@given(data=st.data())
def test_dropout_is_inactive_in_inference(check, data):
    """dropout / recurrent_dropout > 0, inference call: the layer without dropout, and two calls identical."""
    check.require_dropout()
    case = data.draw(check.cases(fixed={"cell_clip": None}, max_timesteps=MAX_TIMESTEPS, long_sequences=False))
    check.dropout_inference(case, **_rates(data))


@rules("TRAIN-2")
@given(data=st.data())
def test_training_at_rate_zero_is_inference(check, data):
    """Training mode with both rates 0: the reference."""
    check.require_dropout()
    case = data.draw(check.cases(fixed={"cell_clip": None}, max_timesteps=MAX_TIMESTEPS, long_sequences=False))
    check.training_at_rate_zero(case)


@rules("TRAIN-3", "GRAD-1")
@given(data=st.data())
def test_training_with_dropout_runs_and_drops(check, data):
    """Training mode with a rate > 0: forward and gradient calls run with canonical shapes, and the output
    differs from inference where the text puts dropout (matches it where the text puts none)."""
    check.require_dropout()
    check.require_gradients()
    case = data.draw(check.cases(fixed={"cell_clip": None}, max_timesteps=MAX_TIMESTEPS, long_sequences=False))
    check.training_runs(_with_cotangents(data, case), **_rates(data))


@rules("TRAIN-4")
@given(data=st.data())
def test_dropout_mask_is_shared_across_timesteps(check, data):
    """The probe of spec/training.md: a training-mode gradient through input (or recurrent) dropout has whole
    zero columns in dW (or dU) when one mask serves every timestep."""
    check.require_dropout(mask_reading=True)
    check.require_gradients()
    recurrent = data.draw(st.booleans(), label="recurrent")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    cfg = Config(input_dim=PROBE["input_dim"], units=PROBE["units"], return_sequences=True,
                 dtype=check.adapter.capabilities.dtypes[0])
    rng = np.random.default_rng([seed, 0x7a1])
    x = rng.standard_normal((PROBE["batch"], PROBE["timesteps"], PROBE["input_dim"]))
    case = _with_cotangents(data, Case(config=cfg, weights=random_weights(cfg, rng), x=x, seed=seed))
    rate = PROBE["rate"]
    check.dropout_mask_sharing(case, dropout=0.0 if recurrent else rate, recurrent_dropout=rate if recurrent else 0.0)
