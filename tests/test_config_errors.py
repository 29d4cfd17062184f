"""Invalid input is refused with one ValueError that names the field and what is allowed (DESIGN §2:
"validated on construction with one clear error per bad field"; STYLE: nothing accepted and ignored).

Each case gives the call and regexes that must all appear in the message: the field's name and the
allowed values (or the allowed range).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from reference import Config, lstm_forward, output_shapes, param_count, parse_model, random_weights, to_keras

BASE = dict(input_dim=3, units=4)


def _config(**kw):
    return lambda: Config(**{**BASE, **kw})


CONFIG_CASES = [
    # (id, call, [patterns that must all be in the message])
    ("units=0", _config(units=0), [r"units=0", r">= 1"]),
    ("input_dim=-1", _config(input_dim=-1), [r"input_dim=-1", r">= 1"]),
    ("units=1.5", _config(units=1.5), [r"units=1\.5", r"integer"]),
    ("units=True", _config(units=True), [r"units=True", r"integer"]),
    ("num_layers=0", _config(num_layers=0), [r"num_layers=0", r">= 1"]),
    ("activation='nope'", _config(activation="nope"), [r"activation='nope'", r"allowed", r"tanh", r"sigmoid"]),
    # Ambiguous across Keras versions (ACT-3 vs ACT-4): not a registry name; the message lists both real ones.
    ("recurrent_activation='hard_sigmoid'", _config(recurrent_activation="hard_sigmoid"),
     [r"recurrent_activation='hard_sigmoid'", r"allowed", r"hard_sigmoid_keras2", r"hard_sigmoid_keras3"]),
    ("onnx_elu(beta=1)", _config(activation="onnx_elu(beta=1)"),
     [r"activation='onnx_elu\(beta=1\)'", r"beta", r"parameters: alpha"]),
    ("onnx param not a number", _config(activation="onnx_elu(alpha=x)"), [r"activation=", r"alpha", r"number"]),
    ("proj_size=units", _config(proj_size=4), [r"proj_size=4", r"\[1, 3\]"]),
    ("proj_size>units", _config(proj_size=9), [r"proj_size=9", r"units"]),
    ("proj_size=-1", _config(proj_size=-1), [r"proj_size=-1", r">= 0"]),
    ("merge_mode without bidirectional", _config(merge_mode="sum"), [r"merge_mode='sum'", r"bidirectional=True"]),
    ("merge_mode='bogus'", _config(bidirectional=True, merge_mode="bogus"),
     [r"merge_mode='bogus'", r"concat, sum, mul, ave, none"]),
    ("merge_mode none stacked", _config(bidirectional=True, merge_mode="none", num_layers=2),
     [r"merge_mode='none'", r"num_layers", r"concat, sum, mul, ave"]),
    ("bias_mode='triple'", _config(bias_mode="triple"), [r"bias_mode='triple'", r"single, double"]),
    ("double bias without bias", _config(bias_mode="double", use_bias=False), [r"bias_mode='double'", r"use_bias"]),
    ("dtype='int8'", _config(dtype="int8"), [r"dtype='int8'", r"float16, float32, float64"]),
    ("cell_clip=0", _config(cell_clip=0), [r"cell_clip=0", r"> 0"]),
    ("cell_clip=-1.0", _config(cell_clip=-1.0), [r"cell_clip=-1\.0", r"> 0"]),
    ("cell_clip=inf", _config(cell_clip=float("inf")), [r"cell_clip=inf", r"finite"]),
    ("go_backwards with bidirectional", _config(go_backwards=True, bidirectional=True),
     [r"go_backwards=True", r"bidirectional=True"]),
    ("peepholes='yes'", _config(peepholes="yes"), [r"peepholes='yes'", r"True or False"]),
    ("from_dict unknown field", lambda: Config.from_dict({**BASE, "unit": 3}), [r"unit", r"allowed", r"units"]),
]


@pytest.mark.parametrize("call, patterns", [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES])
def test_invalid_config_raises_naming_field_and_allowed_values(call, patterns):
    """Config validation: the message names the field, its bad value and the allowed values."""
    with pytest.raises(ValueError, match=patterns[0]) as info:
        call()
    for pat in patterns[1:]:
        assert re.search(pat, str(info.value)), f"{pat!r} not in {str(info.value)!r}"


def _cfg():
    return Config(**BASE, return_sequences=True)


def _w():
    return random_weights(_cfg(), 0)


FORWARD_CASES = [
    ("x 2-D", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 3))), [r"x: shape \(2, 3\)", r"input_dim=3"]),
    ("x wrong input_dim", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 4))),
     [r"x: shape \(2, 5, 4\)", r"input_dim=3"]),
    ("x zero timesteps", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 0, 3))), [r"x: shape", r"timesteps>=1"]),
    ("mask wrong shape", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 3)), mask=np.ones((2, 4), bool)),
     [r"mask: shape \(2, 4\)", r"\(2, 5\)"]),
    ("mask not bool", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 3)), mask=np.ones((2, 5))),
     [r"mask: ", r"bool"]),
    ("lengths > T", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 3)), lengths=np.array([5, 6])),
     [r"lengths=\[5, 6\]", r"\[0, timesteps=5\]"]),
    ("lengths < 0", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 3)), lengths=np.array([-1, 2])),
     [r"lengths=\[-1, 2\]", r"\[0, timesteps=5\]"]),
    ("lengths float", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 3)), lengths=np.array([1.0, 2.0])),
     [r"lengths", r"integer"]),
    ("mask and lengths", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 5, 3)), mask=np.ones((2, 5), bool),
                                              lengths=np.array([1, 2])), [r"mask and lengths", r"at most one"]),
    ("weights W wrong shape", lambda: lstm_forward(_cfg(), random_weights(Config(input_dim=2, units=4), 0),
                                                   np.zeros((2, 5, 3))), [r"weights l0 d0 W", r"\(4, 4, 3\)"]),
    ("weights missing b2", lambda: lstm_forward(Config(**BASE, bias_mode="double"), _w(), np.zeros((1, 2, 3))),
     [r"weights l0 d0 b2", r"expected \(4, 4\)"]),
    ("weights missing direction", lambda: lstm_forward(Config(**BASE, bidirectional=True), _w(), np.zeros((1, 2, 3))),
     [r"weights layer 0", r"expected 2"]),
    ("weights missing layer", lambda: lstm_forward(Config(**BASE, num_layers=2), _w(), np.zeros((1, 2, 3))),
     [r"weights", r"num_layers=2"]),
    ("masked_output", lambda: lstm_forward(_cfg(), _w(), np.zeros((1, 2, 3)), masked_output="prev"),
     [r"masked_output='prev'", r"carry, zero"]),
    ("dtype int", lambda: lstm_forward(_cfg(), _w(), np.zeros((1, 2, 3)), dtype="int32"),
     [r"dtype='int32'", r"float16, float32, float64"]),
    ("initial_state shape", lambda: lstm_forward(_cfg(), _w(), np.zeros((2, 2, 3)),
                                                 initial_state=(np.zeros((2, 5)), np.zeros((2, 4)))),
     [r"initial_state", r"\(2, 4\)"]),
    ("initial_state nesting", lambda: lstm_forward(Config(**BASE, num_layers=2), random_weights(Config(**BASE, num_layers=2), 0),
                                                   np.zeros((2, 2, 3)), initial_state=[[(np.zeros((2, 4)), np.zeros((2, 4)))]]),
     [r"initial_state", r"num_layers=2"]),
]


@pytest.mark.parametrize("call, patterns", [c[1:] for c in FORWARD_CASES], ids=[c[0] for c in FORWARD_CASES])
def test_invalid_forward_arguments_raise_naming_the_argument(call, patterns):
    """SHAPE-1, MASK-3, LAYOUT-1, STATE-1: bad x / mask / lengths / weights / state shapes are refused
    with the argument's name and the expected shape or range."""
    with pytest.raises(ValueError, match=patterns[0]) as info:
        call()
    for pat in patterns[1:]:
        assert re.search(pat, str(info.value)), f"{pat!r} not in {str(info.value)!r}"


def test_param_count_unknown_convention():
    """PARAM-1..PARAM-4: convention 'caffe' is refused and the allowed conventions listed."""
    with pytest.raises(ValueError, match=r"convention='caffe'.*keras, torch, onnx, flax"):
        param_count(Config(**BASE), "caffe")


@pytest.mark.parametrize("spec, pattern", [
    ("conv:3", r"'conv:3'.*lstm, bilstm, dense"),
    ("lstm", r"'lstm'.*KIND:UNITS"),
    ("lstm:x", r"'lstm:x'.*integer >= 1"),
    ("dense:0", r"'dense:0'.*integer >= 1"),
    ("", r"no layers"),
])
def test_parse_model_errors(spec, pattern):
    """PARAM-6: a bad --model item is named, with the expected form."""
    with pytest.raises(ValueError, match=pattern):
        parse_model(spec)


def test_output_shapes_rejects_empty_batch():
    """SHAPE-1: batch and timesteps must be >= 1."""
    with pytest.raises(ValueError, match=r"batch=0.*>= 1"):
        output_shapes(Config(**BASE), 0, 3)


def test_keras_layout_refuses_double_bias_naming_it():
    """LAYOUT-2: a double bias is refused with the allowed value."""
    cfg = Config(**BASE, bias_mode="double")
    with pytest.raises(ValueError, match=r"bias_mode='double'.*allowed: 'single'"):
        to_keras(random_weights(cfg, 0), cfg)
