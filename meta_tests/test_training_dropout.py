"""TRAIN-3 "dropout acts": a layer whose training mode ignores its dropout fails where a dropout mask moves
the output well past the error bar, and no layer is blamed where it cannot (tiny weights: a dropped unit
moves the output less than its own rounding; a false alarm on a correct Keras layer in a dev-profile run)."""

from __future__ import annotations

import numpy as np

from conformance.adapters.numpy_ref import NumpyAdapter
from conformance.harness.judge import Target
from conformance.harness.strategies import Case
from conformance.harness.training_judge import DROPOUT_SEEN, dropout_effect, judge_training
from conformance.harness import errors
from reference import Config, random_weights


class IgnoresDropout(NumpyAdapter):
    """Builds with Keras' dropout options and runs training mode as inference: dropout never acts."""

    name = "numpy-ignores-dropout"
    framework = "keras"

    def dropout_unsupported_reason(self, config, variant, device):
        return None

    def build_dropout(self, config, weights, *, dropout, recurrent_dropout, variant="default", device="cpu"):
        return self.build(config, weights, variant=variant, device=device)

    def forward_training(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        return self.forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)

    def gradients(self, handle, x, *, training=False, **kw):
        return super().gradients(handle, x, **kw)


def _case(weight_scale: float, dropout: float, recurrent_dropout: float, **config) -> Case:
    cfg = Config(**{"input_dim": 4, "units": 16, "dtype": "float32", "return_sequences": True, **config})
    rng = np.random.default_rng(3)
    weights = random_weights(cfg, rng, scale=weight_scale)
    return Case(cfg, weights, rng.normal(size=(7, 8, cfg.input_dim)), seed=11,
                extra={"train_check": "runs", "dropout": dropout, "recurrent_dropout": recurrent_dropout,
                       "cotangent_seed": 5})


def test_dropout_that_never_acts_fails_where_a_mask_would_show():
    case = _case(1.0, 0.3, 0.3)
    assert dropout_effect("keras", case) > DROPOUT_SEEN * errors.K
    j = judge_training(Target(IgnoresDropout()), case)
    assert not j.ok and "dropout did not act" in j.message and j.implicated == ["TRAIN-3"], j.message


def test_no_blame_where_a_mask_moves_the_output_less_than_its_rounding():
    # the dev-profile draw that failed on keras-tensorflow (Keras 3.15.1): outputs ~1e-6, a dropped recurrent
    # unit moves them by ~1e-10
    case = _case(0.01, 0.0, 0.1, input_dim=1, units=100, num_layers=2, go_backwards=True, recurrent_activation="selu")
    assert dropout_effect("keras", case) < DROPOUT_SEEN * errors.K
    j = judge_training(Target(IgnoresDropout()), case)
    assert j.ok and j.metrics["dropout_effect"] < DROPOUT_SEEN * errors.K, j.message
