"""Parameter counts (spec/parameters.md, PARAM-1..PARAM-6).

Literal expectations come from the published seed examples or are derived by hand in the docstring;
the hypothesis properties tie each convention's count to the number of scalars its own layout holds.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from reference import (Config, layer_param_counts, model_param_counts, param_count, parse_model, random_weights,
                       to_flax, to_keras, to_onnx, to_torch)
from ref_cases import SETTINGS, configs, seeds


# ---- the seeds' numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("convention, expected", [("keras", 4464), ("torch", 4512), ("onnx", 4512), ("flax", 4464)])
def test_seed_d80_u12_counts_per_convention(convention, expected):
    """PARAM-1..PARAM-4, seed example: LSTM(12) on 80 features.

    Keras/Flax 4u(d+u+1) = 48*93 = 4464; torch/ONNX carry a second bias: 4u(d+u+2) = 48*94 = 4512.
    """
    assert param_count(Config(input_dim=80, units=12), convention) == expected


def test_seed_d126_u64_keras_count():
    """PARAM-1, seed example: LSTM(64) on 126 features = 4*64*(126+64+1) = 256*191 = 48896."""
    assert param_count(Config(input_dim=126, units=64), "keras") == 48896


def test_seed_model_per_layer_counts():
    """PARAM-6, seed model lstm:64,lstm:128,lstm:64,dense:64,dense:32,dense:5 on 126 features.

    Each layer reads the previous layer's features: 48896, 512*(64+128+1) = 98816, 256*(128+64+1) = 49408,
    Dense 64*(64+1) = 4160, 32*(64+1) = 2080, 5*(32+1) = 165.
    """
    rows = model_param_counts(parse_model("lstm:64,lstm:128,lstm:64,dense:64,dense:32,dense:5"), 126)
    assert [r[0] for r in rows] == ["lstm:64", "lstm:128", "lstm:64", "dense:64", "dense:32", "dense:5"]
    assert [r[1] for r in rows] == [64, 128, 64, 64, 32, 5]
    assert [r[2] for r in rows] == [48896, 98816, 49408, 4160, 2080, 165]
    assert sum(r[2] for r in rows) == 203525


def test_model_bilstm_doubles_and_feeds_concat_width():
    """PARAM-5, PARAM-6: bilstm:8 on 3 features = 2 * 4*8*(3+8+1) = 768, output 16 features (concat);
    dense:2 after it = 2*(16+1) = 34."""
    rows = model_param_counts(parse_model("bilstm:8, dense:2"), 3)
    assert rows == [("bilstm:8", 16, 768), ("dense:2", 2, 34)]


def test_model_counts_in_torch_convention():
    """PARAM-2, PARAM-6: torch lstm:64 on 126 = 4*64*(126+64+2) = 256*192 = 49152; Dense is convention-free."""
    rows = model_param_counts(parse_model("lstm:64,dense:5"), 126, convention="torch")
    assert [r[2] for r in rows] == [49152, 5 * 65]


# ---- hand-derived counts for the options -----------------------------------------------------------

def test_keras_without_bias_and_bidirectional():
    """PARAM-1, PARAM-5: no bias 4u(d+u) = 48*92 = 4416; Bidirectional doubles 4464 -> 8928."""
    assert param_count(Config(input_dim=80, units=12, use_bias=False), "keras") == 4416
    assert param_count(Config(input_dim=80, units=12, bidirectional=True), "keras") == 8928


def test_torch_projection_bidirectional_two_layers_hand_count():
    """PARAM-2, PROJ-1, STACK-1: nn.LSTM(7, 20, num_layers=2, proj_size=5, bidirectional=True).

    Per direction, layer 0: weight_ih (80, 7) = 560, weight_hh (80, 5) = 400, bias_ih + bias_hh = 160,
    weight_hr (5, 20) = 100 -> 1220; two directions -> 2440.
    Layer 1 reads 2*5 = 10 features: 80*10 = 800 + 400 + 160 + 100 = 1460; two directions -> 2920.
    Total 5360.
    """
    cfg = Config(input_dim=7, units=20, proj_size=5, bidirectional=True, num_layers=2)
    assert layer_param_counts(cfg, "torch") == [2440, 2920]
    assert param_count(cfg, "torch") == 5360


def test_torch_bidirectional_two_layers_hand_count():
    """PARAM-2, STACK-1: nn.LSTM(80, 12, num_layers=2, bidirectional=True).

    Layer 0: 2 * 4*12*(80+12+2) = 2*4512 = 9024; layer 1 reads 24 features: 2 * 48*(24+12+2) = 2*1824 = 3648.
    """
    cfg = Config(input_dim=80, units=12, bidirectional=True, num_layers=2)
    assert layer_param_counts(cfg, "torch") == [9024, 3648]


def test_torch_projection_three_layers_hand_count():
    """PARAM-2, PROJ-1: nn.LSTM(4, 6, num_layers=3, proj_size=2).

    Layer 0: 24*4 + 24*2 + 48 + 2*6 = 96 + 48 + 48 + 12 = 204; layers 1, 2 read 2 features:
    48 + 48 + 48 + 12 = 156 each. Total 516.
    """
    cfg = Config(input_dim=4, units=6, num_layers=3, proj_size=2)
    assert layer_param_counts(cfg, "torch") == [204, 156, 156]
    assert param_count(cfg, "torch") == 516


def test_onnx_peepholes_hand_count():
    """PARAM-3, PEEP-1: W 48*80 = 3840, R 48*12 = 576, B 8*12 = 96, P 3*12 = 36 -> 4548; two directions 9096."""
    assert param_count(Config(input_dim=80, units=12, peepholes=True), "onnx") == 4548
    assert param_count(Config(input_dim=80, units=12, peepholes=True, bidirectional=True), "onnx") == 9096


@pytest.mark.parametrize("convention, cfg", [
    ("keras", Config(input_dim=3, units=4, peepholes=True)),
    ("keras", Config(input_dim=3, units=4, proj_size=2)),
    ("torch", Config(input_dim=3, units=4, peepholes=True)),
    ("onnx", Config(input_dim=3, units=4, proj_size=2)),
    ("flax", Config(input_dim=3, units=4, use_bias=False)),
])
def test_unexpressible_architecture_raises_naming_the_convention(convention, cfg):
    """PARAM-1..PARAM-4: a layer the framework cannot build has no count; the error names the framework."""
    with pytest.raises(ValueError, match=convention):
        param_count(cfg, convention)


# ---- identities: a convention's count is the number of scalars in its layout -----------------------

def _size(obj) -> int:
    if isinstance(obj, dict):
        return sum(_size(v) for v in obj.values())
    if isinstance(obj, list):
        return sum(_size(v) for v in obj)
    return obj.size


@SETTINGS
@given(configs(proj_size=0, peepholes=False, bias_mode="single"), seeds)
def test_keras_count_equals_keras_layout_size(cfg, seed):
    """PARAM-1, LAYOUT-2: param_count(keras) == number of scalars in to_keras(...)."""
    assert param_count(cfg, "keras") == _size(to_keras(random_weights(cfg, seed), cfg))


@SETTINGS
@given(configs(peepholes=False), seeds)
def test_torch_count_equals_torch_state_dict_size(cfg, seed):
    """PARAM-2, LAYOUT-3: param_count(torch) == scalars in to_torch(...) (bias_hh is always present)."""
    assert param_count(cfg, "torch") == _size(to_torch(random_weights(cfg, seed), cfg))


@SETTINGS
@given(configs(peepholes=False, use_bias=True, bias_mode="double"), seeds)
def test_torch_count_equals_canonical_size_with_double_bias(cfg, seed):
    """PARAM-2, LAYOUT-1: with two biases the canonical weights hold exactly torch's parameters."""
    assert param_count(cfg, "torch") == _size([lw.arrays() for dirs in random_weights(cfg, seed).layers for lw in dirs])


@SETTINGS
@given(configs(proj_size=0), seeds)
def test_onnx_count_equals_onnx_inputs_size(cfg, seed):
    """PARAM-3, LAYOUT-4: param_count(onnx) == scalars in W, R, B, P of every layer's ONNX node."""
    w = random_weights(cfg, seed)
    assert param_count(cfg, "onnx") == sum(_size(to_onnx(w, cfg, layer=l)) for l in range(cfg.num_layers))


@SETTINGS
@given(configs(proj_size=0, peepholes=False, use_bias=True, bias_mode="single"), seeds)
def test_flax_count_equals_flax_params_size(cfg, seed):
    """PARAM-4, LAYOUT-5: param_count(flax) == scalars in every (layer, direction) LSTMCell params dict."""
    w = random_weights(cfg, seed)
    total = sum(_size(to_flax(w, cfg, layer=l, direction=d))
                for l in range(cfg.num_layers) for d in range(cfg.num_directions))
    assert param_count(cfg, "flax") == total


def _expressible(cfg: Config) -> list[str]:
    """The conventions in which ``cfg`` can be built (PARAM-1..PARAM-4)."""
    out = []
    if not cfg.proj_size and not cfg.peepholes:
        out.append("keras")
        if cfg.use_bias:
            out.append("flax")
    if not cfg.peepholes:
        out.append("torch")
    if not cfg.proj_size:
        out.append("onnx")
    return out


@SETTINGS
@given(configs(num_layers=1, bidirectional=False))
def test_bidirectional_is_twice_one_direction(cfg):
    """PARAM-5: one bidirectional layer has exactly twice the parameters of one direction."""
    bi = cfg.replace(go_backwards=False, bidirectional=True)
    for conv in _expressible(cfg):
        assert param_count(bi, conv) == 2 * param_count(cfg, conv), conv


@SETTINGS
@given(configs(num_layers=2))
def test_stacked_count_is_sum_of_single_layers(cfg):
    """PARAM-5, STACK-1: layer 0 counts as a one-layer config on input_dim, layer l>0 as a one-layer config
    on the merged output width of the layer below; the total is their sum."""
    first = cfg.replace(num_layers=1)
    upper = cfg.replace(num_layers=1, input_dim=cfg.merged_size)
    for conv in _expressible(cfg):
        assert layer_param_counts(cfg, conv) == [param_count(first, conv), param_count(upper, conv)], conv
        assert param_count(cfg, conv) == param_count(first, conv) + param_count(upper, conv), conv


def test_stacked_bidirectional_upper_layer_reads_concat_width():
    """PARAM-5, STACK-1, BIDI-2: Keras Bidirectional(LSTM(5)) x2 on 3 features, concat: layer 1 reads 10 features.

    Layer 0: 2 * 4*5*(3+5+1) = 360; layer 1: 2 * 4*5*(10+5+1) = 640. With merge 'sum' layer 1 reads 5:
    2 * 4*5*(5+5+1) = 440.
    """
    assert layer_param_counts(Config(input_dim=3, units=5, bidirectional=True, num_layers=2), "keras") == [360, 640]
    assert layer_param_counts(Config(input_dim=3, units=5, bidirectional=True, num_layers=2, merge_mode="sum"),
                              "keras") == [360, 440]
