"""DEF-1 / DEF-2: ``default_init_problems`` accepts the reference's own Keras defaults and names each slip."""

from __future__ import annotations

import pytest

from reference import (
    DEFAULT_ACTIVATIONS,
    GATES,
    ORTHOGONALITY_TOLERANCE,
    Config,
    default_init_problems,
    keras_default_weights,
    random_weights,
)

CONFIGS = [Config(input_dim=3, units=4), Config(input_dim=2, units=5, bidirectional=True, num_layers=2),
           Config(input_dim=3, units=4, use_bias=False)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["plain", "bidi-2-layers", "no-bias"])
def test_keras_default_weights_have_no_problems(cfg: Config):
    problems, worst_orth = default_init_problems(keras_default_weights(cfg, seed=3), DEFAULT_ACTIVATIONS)
    assert problems == []
    assert worst_orth < 1e-12


def test_forget_bias_split_over_two_biases_is_summed():
    """With two biases (torch/ONNX style) DEF-1 applies to their sum: 0.5 + 0.5 == 1."""
    w = keras_default_weights(CONFIGS[0])
    lw = w[0, 0]
    lw.b = lw.b / 2
    lw.b2 = lw.b.copy()
    assert default_init_problems(w, DEFAULT_ACTIVATIONS)[0] == []


def test_missing_forget_bias_is_named():
    w = keras_default_weights(CONFIGS[1])
    w[1, 1].b[GATES.index("f")] = 0.0
    problems, _ = default_init_problems(w, DEFAULT_ACTIVATIONS)
    assert problems == ["l1 d1: forget-gate bias not exactly 1 (min 0.0, max 0.0)"]


def test_nonzero_other_bias_is_named():
    w = keras_default_weights(CONFIGS[0])
    w[0, 0].b[GATES.index("o")][2] = 0.25
    assert default_init_problems(w, DEFAULT_ACTIVATIONS)[0] == ["l0 d0: non-forget biases not 0 (max |b| 0.25)"]


def test_non_orthogonal_recurrent_kernel_is_named():
    cfg = CONFIGS[0]
    w = keras_default_weights(cfg)
    w[0, 0].U = random_weights(cfg, 0)[0, 0].U
    problems, worst_orth = default_init_problems(w, DEFAULT_ACTIVATIONS)
    assert worst_orth > ORTHOGONALITY_TOLERANCE
    assert problems == [f"recurrent kernel not orthogonal: max |K K^T - I| = {worst_orth:.3g}"]


def test_wrong_default_activations_are_named():
    """DEF-2: standalone Keras <= 2.2.5 defaulted to hard_sigmoid (the Keras 2 formula)."""
    acts = {"activation": "tanh", "recurrent_activation": "hard_sigmoid_keras2"}
    problems, _ = default_init_problems(keras_default_weights(CONFIGS[0]), acts)
    assert problems == ["default recurrent_activation computes hard_sigmoid_keras2, spec DEF-2 says sigmoid"]
    problems, _ = default_init_problems(keras_default_weights(CONFIGS[0]), {})
    assert len(problems) == 2 and all("spec DEF-2 says" in p for p in problems)

