"""Broken adapters for the diagnosis meta tests: the numpy reference under one catalogue variant each
(reference/variants.py), one per variant family that :mod:`broken_adapters` does not already cover.

``DIAGNOSABLE`` lists every broken adapter whose failures the diagnosis must explain -- these and the
independently written slips of :mod:`broken_adapters` -- with the property that targets it and the variant
names that count as naming the injected slip (several when the slip is the same function under two names).
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from broken_adapters import EXPECTED

from conformance.adapters.base import Output
from conformance.adapters.numpy_ref import NumpyAdapter
from reference.variants import Call, catalogue, run_variants

_BY_NAME = {v.name: v for v in catalogue()}


class VariantAdapter(NumpyAdapter):
    """The numpy reference computing one variant's reading instead of the spec's."""

    variant_name = ""

    def forward(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        cfg = handle.config
        if handle.stateful:
            return super().forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)
        call = Call(cfg, handle.weights, np.asarray(x, cfg.dtype), mask, initial_state, masked_output, dtype=cfg.dtype)
        res = run_variants([_BY_NAME[self.variant_name]], call)
        if res is None:  # the variant does not apply to this case: the spec's reading
            return super().forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)

        def cast(a):
            return tuple(np.asarray(v, cfg.dtype) for v in a) if isinstance(a, tuple) else np.asarray(a, cfg.dtype)

        return Output(output=cast(res.output), h=[[cast(v) for v in d] for d in res.h],
                      c=[[cast(v) for v in d] for d in res.c], kernel_path=f"variant {self.variant_name}")


_EQ = "conformance/properties/test_equations.py::test_forward_matches_reference"
_MASK = "conformance/properties/test_masking.py::test_masked_steps_keep_state"
_CELL = "conformance/properties/test_cell_options.py::test_onnx_cell_options"
_BIDI = "conformance/properties/test_direction.py::test_bidirectional_merge_modes"
_BACK = "conformance/properties/test_direction.py::test_go_backwards_output_in_processing_order"
_STATE = "conformance/properties/test_state.py::test_initial_state_is_used"
_NUM = "conformance/properties/test_numerics.py::test_layer_computes_in_its_declared_dtype"

#: injected variant -> the property that targets it
INJECTED = {
    "gate-order[W]:icfo": _EQ,
    "gate-order[U]:ifoc": _EQ,
    "gate-order[b]:fico": _EQ,
    "activation-roles-swapped": _EQ,
    "forget-bias:+1-added": _EQ,
    "forget-bias:set-to-1": _EQ,
    "bias:doubled": _EQ,
    "bias:second-ignored": _EQ,
    "states:h-c-swapped": _EQ,
    "steps:first-skipped": _EQ,
    "steps:last-skipped": _EQ,
    "masked-output:zero": _MASK,
    "masked-output:h0-before-first-valid": _MASK,
    "masked-output:leftover": _MASK,
    "masked-state:update": _MASK,
    "empty-rows:zero-state": _MASK,
    "bidirectional:backward-not-re-reversed": _BIDI,
    "go-backwards:ignored": _BACK,
    "peephole-rows:ifo": _CELL,
    "clip:gate-inputs": _CELL,
    "input-forget:i-from-f": _CELL,
    "operands:bfloat16": _NUM,
}


def _adapter_name(variant: str) -> str:
    return "broken-variant-" + re.sub(r"[^a-z0-9]+", "-", variant.lower()).strip("-")


#: variants defined for one layer and one direction only: their adapters declare no more, so that the drawn
#: cases are ones where the slip applies
_SIMPLE = dataclasses.replace(NumpyAdapter.capabilities, max_layers=1,
                              options=NumpyAdapter.capabilities.options - {"bidirectional"})
_SIMPLE_ONLY = {"steps:first-skipped", "steps:last-skipped", "masked-output:h0-before-first-valid",
                "masked-output:leftover", "masked-state:update"}

#: backend name -> adapter class, one per injected variant
VARIANT_ADAPTERS = {
    _adapter_name(v): type(f"Variant_{i}", (VariantAdapter,), {
        "name": _adapter_name(v), "variant_name": v, "__doc__": _BY_NAME[v].reading,
        **({"capabilities": _SIMPLE} if v in _SIMPLE_ONLY else {})})
    for i, v in enumerate(INJECTED)
}

#: the forward and count slips of broken_adapters and the variant names that name each (the gradient slips
#: fail gradient checks, which the diagnosis does not cover)
_SLIP_NAMES = {
    "broken-gate-swap": {"gate-order[all]:fico"},
    "broken-no-forget-bias": {"forget-bias:missing"},
    "broken-go-backwards-unreversed": {"go-backwards:original-order"},
    "broken-padded-end-state": {"final-state:padded-end", "masked-state:update"},
    "broken-keras2-hard-sigmoid": {"recurrent_activation:hard_sigmoid_keras2", "activation:hard_sigmoid_keras2",
                                   "activation:hard_sigmoid_keras2 + recurrent_activation:hard_sigmoid_keras2"},
    "broken-param-second-bias": {"params:torch-second-bias-uncounted", "params:onnx-second-bias-uncounted"},
    "broken-float16-inside": {"compute:float16"},
    "broken-tf32-like": {"operands:tf32"},
    "broken-ave-merge": {"merge:as-sum"},
    "broken-state-reset-64": {"steps:state-reset-every-64"},
}

#: backend -> (node id of the property that targets it, names that count as naming the injected slip)
DIAGNOSABLE = {
    **{name: (f"{EXPECTED[name][1]}::{EXPECTED[name][2]}", names) for name, names in _SLIP_NAMES.items()},
    **{name: (INJECTED[cls.variant_name], {cls.variant_name}) for name, cls in VARIANT_ADAPTERS.items()},
}

globals().update({cls.__name__: cls for cls in VARIANT_ADAPTERS.values()})  # importable by name (broken_plugin)
