"""The canonical LSTM configuration (spec/options.md, spec/shapes.md).

One frozen dataclass, validated on construction: every bad field raises one ``ValueError`` that
names the field, the value and what is allowed. Framework-only knobs (Keras ``implementation``,
``unroll``, torch ``batch_first``) belong to adapters, not here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from .activations import Activation, parse_activation

__all__ = ["Config", "MERGE_MODES", "BIAS_MODES", "DTYPES", "CLIP_READINGS", "INPUT_FORGET_READINGS"]

MERGE_MODES = ("concat", "sum", "mul", "ave", "none")  # BIDI-2; "none" returns both directions
BIAS_MODES = ("single", "double")  # GATE-1: Keras/Flax one bias, torch/ONNX two (summed)
DTYPES = ("float16", "float32", "float64")
# Readings of texts that are ambiguous or silent (spec/README.md "Readings"); the first is the default.
# CLIP-1: ONNX `clip` "is applied to the input of activations": read literally, h's input c_t too.
CLIP_READINGS = ("gate-inputs-and-cell", "gate-inputs")
# IFG-1: ONNX `input_forget` "couple the input and forget gates" (silent on how): f = 1 - i is this
# spec's convention; i = 1 - f is the CIFG coupling of other LSTM definitions.
INPUT_FORGET_READINGS = ("f-from-i", "i-from-f")


def _int_field(name: str, value, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r}: must be an integer >= {minimum}")
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name}={value!r}: must be an integer {allowed}")


def _bool_field(name: str, value) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r}: must be True or False")


@dataclass(frozen=True)
class Config:
    """An LSTM layer (or stack) in canonical terms.

    ``units`` is the cell size u; ``proj_size`` p (0 = none) makes the hidden state/outputs size p
    (PROJ-1). ``num_layers`` stacks layers; layer l > 0 reads the (merged) output of layer l-1
    (STACK-1). ``merge_mode`` applies only with ``bidirectional`` (BIDI-2). ``clip_reading`` and
    ``input_forget_reading`` name the reading of an ambiguous or silent text that ``cell_clip`` and
    ``input_forget`` follow (CLIP-1, IFG-1); the defaults are the governing text's reading or, where
    the text is silent, this spec's convention.
    """

    input_dim: int
    units: int
    activation: str = "tanh"  # GATE-2: g and act(c')
    recurrent_activation: str = "sigmoid"  # GATE-2: i, f, o
    use_bias: bool = True
    bias_mode: str = "single"
    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    bidirectional: bool = False
    merge_mode: str | None = None  # None = "concat" when bidirectional
    num_layers: int = 1
    proj_size: int = 0
    peepholes: bool = False
    cell_clip: float | None = None
    input_forget: bool = False
    dtype: str = "float64"
    clip_reading: str = CLIP_READINGS[0]  # CLIP-1: what cell_clip bounds
    input_forget_reading: str = INPUT_FORGET_READINGS[0]  # IFG-1: which gate input_forget derives
    _act: Activation = field(init=False, repr=False, compare=False)
    _ract: Activation = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _int_field("input_dim", self.input_dim, 1)
        _int_field("units", self.units, 1)
        _int_field("num_layers", self.num_layers, 1)
        object.__setattr__(self, "_act", parse_activation(self.activation, field="activation"))
        object.__setattr__(self, "_ract", parse_activation(self.recurrent_activation, field="recurrent_activation"))
        for name in ("use_bias", "return_sequences", "return_state", "go_backwards", "bidirectional", "peepholes",
                     "input_forget"):
            _bool_field(name, getattr(self, name))
        if self.bias_mode not in BIAS_MODES:
            raise ValueError(f"bias_mode={self.bias_mode!r}: allowed values are {', '.join(BIAS_MODES)}")
        if self.merge_mode is not None:
            if not self.bidirectional:
                raise ValueError(f"merge_mode={self.merge_mode!r} requires bidirectional=True (it merges the two directions)")
            if self.merge_mode not in MERGE_MODES:
                raise ValueError(f"merge_mode={self.merge_mode!r}: allowed values are {', '.join(MERGE_MODES)}")
        if self.bidirectional and self.go_backwards:
            raise ValueError("go_backwards=True with bidirectional=True: allowed only one of them (the backward "
                             "direction of a bidirectional layer already reads the input reversed)")
        if self.merge_mode == "none" and self.num_layers > 1:
            raise ValueError("merge_mode='none' with num_layers>1: a stacked layer needs a merged input; "
                             "allowed merge modes for stacks are concat, sum, mul, ave")
        _int_field("proj_size", self.proj_size, 0)
        if self.proj_size and self.proj_size >= self.units:
            raise ValueError(f"proj_size={self.proj_size}: must be 0 (no projection) or in [1, units-1] = [1, {self.units - 1}]")
        if self.cell_clip is not None:
            ok = isinstance(self.cell_clip, (int, float, np.floating)) and not isinstance(self.cell_clip, bool)
            if not ok or not math.isfinite(self.cell_clip) or self.cell_clip <= 0:
                raise ValueError(f"cell_clip={self.cell_clip!r}: must be None (no clip) or a finite number > 0")
        if self.clip_reading not in CLIP_READINGS:
            raise ValueError(f"clip_reading={self.clip_reading!r}: allowed values are "
                             f"{', '.join(CLIP_READINGS)} (CLIP-1)")
        if self.input_forget_reading not in INPUT_FORGET_READINGS:
            raise ValueError(f"input_forget_reading={self.input_forget_reading!r}: allowed values are "
                             f"{', '.join(INPUT_FORGET_READINGS)} (IFG-1)")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}: allowed values are {', '.join(DTYPES)}")
        if self.bias_mode == "double" and not self.use_bias:
            raise ValueError("bias_mode='double' with use_bias=False: allowed bias_mode is 'single' when there is no bias")

    # ---- derived quantities -------------------------------------------------------------------
    @property
    def act(self) -> Activation:
        return self._act

    @property
    def recurrent_act(self) -> Activation:
        return self._ract

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def effective_merge_mode(self) -> str | None:
        if not self.bidirectional:
            return None
        return self.merge_mode or "concat"

    @property
    def hidden_size(self) -> int:
        """Size of h and of each direction's output: proj_size if projecting, else units (PROJ-1)."""
        return self.proj_size or self.units

    @property
    def merged_size(self) -> int:
        """Feature size of a layer's output after merging directions (BIDI-2)."""
        if self.effective_merge_mode == "concat":
            return 2 * self.hidden_size
        return self.hidden_size

    def layer_input_dim(self, layer: int) -> int:
        """STACK-1: layer 0 reads input_dim features, layer l>0 the merged output of layer l-1."""
        return self.input_dim if layer == 0 else self.merged_size

    def replace(self, **changes) -> "Config":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("_act", None)
        d.pop("_ract", None)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown Config field(s) {unknown}; allowed: {sorted(known)}")
        return cls(**d)
