"""The executable LSTM specification: numpy only, float64 by default (see spec/)."""

from .activations import ACTIVATIONS, Activation, activation_names, parse_activation
from .backward import Gradients, lstm_backward
from .cell import input_preactivations, lstm_step, lstm_step_backward
from .config import BIAS_MODES, CLIP_READINGS, DTYPES, INPUT_FORGET_READINGS, MERGE_MODES, Config
from .forward import EMPTY_ROW_READINGS, LAST_OUTPUT_READINGS, LSTMResult, lengths_to_mask, lstm_forward
from .layouts import from_flax, from_keras, from_onnx, from_torch, to_flax, to_keras, to_onnx, to_torch
from .onnx_activations import (
    ONNX_ACTIVATION_NAMES,
    PARAMETER_ORDERS,
    SCALED_TANH_DEFAULTS,
    from_onnx_activations,
    to_onnx_activations,
)
from .params import CONVENTIONS, layer_param_counts, model_param_counts, param_count, parse_model
from .shapes import output_shapes
from .weights import (
    DEFAULT_ACTIVATIONS,
    GATES,
    ORTHOGONALITY_TOLERANCE,
    UNIT_FORGET_BIAS_READINGS,
    LayerWeights,
    Weights,
    default_init_problems,
    keras_default_weights,
    random_weights,
    unit_forget_bias,
)

__all__ = [
    "ACTIVATIONS", "Activation", "activation_names", "parse_activation", "BIAS_MODES", "DTYPES", "MERGE_MODES",
    "Config", "input_preactivations", "lstm_step", "lstm_step_backward",
    "Gradients", "lstm_backward", "LSTMResult", "lengths_to_mask", "lstm_forward", "from_flax",
    "from_keras", "from_onnx", "from_torch", "to_flax", "to_keras", "to_onnx", "to_torch", "CONVENTIONS",
    "layer_param_counts", "model_param_counts", "param_count", "parse_model", "output_shapes", "GATES",
    "LayerWeights", "Weights", "keras_default_weights", "random_weights",
    "DEFAULT_ACTIVATIONS", "ORTHOGONALITY_TOLERANCE", "default_init_problems",
    # readings of ambiguous or silent texts (spec/README.md "Readings")
    "CLIP_READINGS", "INPUT_FORGET_READINGS", "LAST_OUTPUT_READINGS", "EMPTY_ROW_READINGS", "PARAMETER_ORDERS",
    "SCALED_TANH_DEFAULTS", "UNIT_FORGET_BIAS_READINGS", "unit_forget_bias", "ONNX_ACTIVATION_NAMES",
    "from_onnx_activations", "to_onnx_activations",
]
