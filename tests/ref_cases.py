"""Shared hypothesis strategies and helpers for the reference's unit tests.

Small shapes only: these tests check the reference's own invariants, so a 3-unit layer over 4 steps
sees the same rules as a 512-unit one, and the whole suite stays fast. Inputs and weights come from
seeded numpy generators (``random_weights`` is asymmetric across gates, so a gate swap is visible);
hypothesis draws the configuration and the seeds, so a failure shrinks to a small config and one seed.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from reference import Config, random_weights

# One settings object for every property here: 50 small examples keep tests/ well under a minute on 2 cores.
SETTINGS = settings(max_examples=50, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Activations that stay finite for the small inputs drawn here (no 'exponential': it overflows and turns
# equalities into NaN comparisons, which the overflow test covers on its own).
ACTIVATIONS = ("tanh", "softsign", "relu", "hard_sigmoid_keras3", "onnx_scaled_tanh(alpha=1.5, beta=0.5)", "elu")
RECURRENT_ACTIVATIONS = ("sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3", "onnx_hard_sigmoid(alpha=0.3, beta=0.4)")
MERGES = ("concat", "sum", "mul", "ave", "none")

seeds = st.integers(0, 2**32 - 1)


@st.composite
def configs(draw, **fixed) -> Config:
    """A small valid Config; keyword arguments pin fields (e.g. ``bidirectional=False``)."""

    def pick(name, strategy):
        return fixed[name] if name in fixed else draw(strategy)

    units = pick("units", st.integers(1, 4))
    bidirectional = pick("bidirectional", st.booleans())
    num_layers = pick("num_layers", st.integers(1, 2))
    merge_mode = None
    if bidirectional:
        allowed = MERGES if num_layers == 1 else MERGES[:-1]
        merge_mode = pick("merge_mode", st.sampled_from((None,) + allowed))
    use_bias = pick("use_bias", st.booleans())
    cfg = dict(
        input_dim=pick("input_dim", st.integers(1, 4)),
        units=units,
        activation=pick("activation", st.sampled_from(ACTIVATIONS)),
        recurrent_activation=pick("recurrent_activation", st.sampled_from(RECURRENT_ACTIVATIONS)),
        use_bias=use_bias,
        bias_mode=pick("bias_mode", st.sampled_from(("single", "double") if use_bias else ("single",))),
        return_sequences=pick("return_sequences", st.booleans()),
        return_state=pick("return_state", st.booleans()),
        go_backwards=False if bidirectional else pick("go_backwards", st.booleans()),
        bidirectional=bidirectional,
        merge_mode=merge_mode,
        num_layers=num_layers,
        proj_size=pick("proj_size", st.integers(0, units - 1)),
        peepholes=pick("peepholes", st.booleans()),
        cell_clip=pick("cell_clip", st.sampled_from((None, 0.5, 2.0))),
        input_forget=pick("input_forget", st.booleans()),
    )
    return Config(**cfg)


def inputs(config: Config, seed: int, batch: int = 2, timesteps: int = 4, scale: float = 1.0) -> np.ndarray:
    """x[B, T, input_dim] ~ N(0, scale^2), seeded."""
    return np.random.default_rng(seed).normal(0.0, scale, (batch, timesteps, config.input_dim))


def initial_state(config: Config, seed: int, batch: int, scale: float = 0.5):
    """Random non-zero ``[[(h0, c0)] * directions] * layers`` in the layout lstm_forward takes."""
    rng = np.random.default_rng(seed)
    return [[(rng.normal(0, scale, (batch, config.hidden_size)), rng.normal(0, scale, (batch, config.units)))
             for _ in range(config.num_directions)] for _ in range(config.num_layers)]


def case(config: Config, seed: int, batch: int = 2, timesteps: int = 4, weight_scale: float = 1.0):
    """(weights, x) for ``config`` from one seed."""
    return random_weights(config, seed, scale=weight_scale), inputs(config, seed + 1, batch, timesteps)


def assert_close(actual, expected, atol: float, what: str) -> None:
    """Max-abs comparison whose message names the quantity and the worst error."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    err = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64)))) if actual.size else 0.0
    assert err <= atol, f"{what}: max|diff| = {err:.3e} > atol {atol:.1e}"
