"""Deliberately broken adapters: the numpy reference with one semantic slip each.

Each is a slip a real framework binding could make. The meta tests run the conformance properties on
them and require a *fail* naming the rule the slip breaks (``EXPECTED``); the correct ``numpy`` adapter
must pass the same runs, so the suite is shown to discriminate rather than to fail everything.

The weight and activation slips are :mod:`conformance.calibration.slips` functions, the same ones the
calibration measures against K. They register under ``broken-*`` names through :mod:`broken_plugin`
(``pytest -p broken_plugin``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from conformance.adapters.base import Capabilities, GradientOutput, Output
from conformance.adapters.numpy_ref import NumpyAdapter
from conformance.calibration import slips
from reference import Weights, lstm_forward


class GateSwapAdapter(NumpyAdapter):
    """i and f blocks of W, U, b (and b2) exchanged: a layout table with two gates in the wrong order."""

    name = "broken-gate-swap"

    def build(self, config, weights, **kw):
        return super().build(config, slips.swap_input_forget(weights), **kw)


class NoForgetBiasAdapter(NumpyAdapter):
    """The forget-gate chunk of every bias dropped (e.g. a loader that skips ``unit_forget_bias``'s chunk)."""

    name = "broken-no-forget-bias"

    def build(self, config, weights, **kw):
        return super().build(config, slips.drop_forget_bias(weights), **kw)


class GoBackwardsUnreversedAdapter(NumpyAdapter):
    """go_backwards output flipped back to original time order (Keras returns it in processing order)."""

    name = "broken-go-backwards-unreversed"

    def forward(self, handle, x, **kw):
        out = super().forward(handle, x, **kw)
        cfg = handle.config
        if cfg.go_backwards and cfg.return_sequences:
            out.output = out.output[:, ::-1]
        return out


class PaddedEndStateAdapter(NumpyAdapter):
    """Final (h, c) taken after the last *padded* step: the states come from a run that ignores the mask
    (as if masked steps updated the state), the outputs from the masked run."""

    name = "broken-padded-end-state"

    def forward(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        out = super().forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)
        if mask is not None:
            cfg = handle.config
            unmasked = lstm_forward(cfg, handle.weights, x.astype(cfg.dtype), initial_state=initial_state)
            out = Output(output=out.output, h=unmasked.h, c=unmasked.c, kernel_path=out.kernel_path)
        return out


class Keras2HardSigmoidAdapter(NumpyAdapter):
    """Declares Keras 3's ``hard_sigmoid`` (relu6(x+3)/6) but computes Keras 2's clip(0.2x+0.5, 0, 1)."""

    name = "broken-keras2-hard-sigmoid"
    # A Keras-like activation table, so the drawn cases hit hard_sigmoid often.
    capabilities = Capabilities(
        options=NumpyAdapter.capabilities.options,
        activations={"tanh": "tanh", "sigmoid": "sigmoid", "hard_sigmoid": "hard_sigmoid_keras3", "relu": "relu",
                     "linear": "linear"},
        dtypes=("float32", "float64"),
        merge_modes=NumpyAdapter.capabilities.merge_modes,
        bias_modes=NumpyAdapter.capabilities.bias_modes,
        max_layers=NumpyAdapter.capabilities.max_layers,
    )

    def build(self, config, weights, **kw):
        return super().build(slips.keras2_hard_sigmoid(config), weights, **kw)


class SecondBiasUncountedAdapter(NumpyAdapter):
    """Reports a parameter count without the second bias (torch's bias_hh / ONNX's Rb)."""

    name = "broken-param-second-bias"

    def param_count(self, handle):
        full = super().param_count(handle)
        return full - sum(lw.b2.size for dirs in handle.weights.layers for lw in dirs if lw.b2 is not None)


class Float16InsideAdapter(NumpyAdapter):
    """Declares float32 but computes in float16 (a kernel that downcasts internally) and returns float32."""

    name = "broken-float16-inside"

    def forward(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        cfg = handle.config
        if cfg.dtype != "float32":
            return super().forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)
        res = lstm_forward(cfg, handle.weights, x, mask=mask, initial_state=initial_state,
                           masked_output=masked_output, dtype="float16")
        cast = lambda a: tuple(np.asarray(v, np.float32) for v in a) if isinstance(a, tuple) else np.asarray(a, np.float32)  # noqa: E731
        return Output(output=cast(res.output), h=[[cast(v) for v in d] for d in res.h],
                      c=[[cast(v) for v in d] for d in res.c], kernel_path="float16-inside")


class ReducedMantissaAdapter(NumpyAdapter):
    """float32 with the matmul operands (inputs, weights, initial state) rounded to TF32's 10-bit mantissa."""

    name = "broken-tf32-like"

    def build(self, config, weights, **kw):
        if config.dtype == "float32":
            weights = Weights.from_flat({k: _tf32(v) for k, v in weights.flat().items()})
        return super().build(config, weights, **kw)

    def forward(self, handle, x, *, initial_state=None, **kw):
        if handle.config.dtype == "float32":
            x = _tf32(x)
            if initial_state is not None:
                initial_state = [[(_tf32(h), _tf32(c)) for h, c in dirs] for dirs in initial_state]
        return super().forward(handle, x, initial_state=initial_state, **kw)


def _tf32(a):
    """Round to a 10-bit mantissa (TF32's), as a float32 matmul on TF32 tensor cores sees its operands."""
    bits = np.asarray(a, np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)
    return rounded.view(np.float32).astype(np.float64)


class AveAsSumAdapter(NumpyAdapter):
    """Bidirectional merge_mode 'ave' computed as the sum of the directions (the halving forgotten)."""

    name = "broken-ave-merge"
    capabilities = dataclasses.replace(NumpyAdapter.capabilities, merge_modes=("ave",))

    def build(self, config, weights, **kw):
        if config.bidirectional and config.merge_mode == "ave":
            config = config.replace(merge_mode="sum")
        return super().build(config, weights, **kw)


class StateResetAdapter(NumpyAdapter):
    """The state starts over every 64 steps (a kernel that processes long sequences in chunks and drops the
    carry between them)."""

    name = "broken-state-reset-64"
    CHUNK = 64

    def forward(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        T = x.shape[1]
        if T <= self.CHUNK or handle.config.bidirectional or handle.config.go_backwards:
            return super().forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)
        cfg = handle.config.replace(return_sequences=True)
        parts, state = [], initial_state
        for t0 in range(0, T, self.CHUNK):
            m = None if mask is None else mask[:, t0:t0 + self.CHUNK]
            res = lstm_forward(cfg, handle.weights, x[:, t0:t0 + self.CHUNK].astype(cfg.dtype), mask=m,
                               initial_state=state if t0 == 0 else None, masked_output=masked_output)
            parts.append(res.output)
        y = np.concatenate(parts, axis=1)
        return Output(output=y if handle.config.return_sequences else y[:, -1], h=res.h, c=res.c,
                      kernel_path="chunked")


class TruncatedGradientAdapter(NumpyAdapter):
    """Gradients back-propagated through the last 4 processing steps only (truncated BPTT where the full
    gradient is asked for): the input gradient before them and the initial-state gradients are 0, the weight
    gradients hold only those steps'. One direction (go_backwards as the forward run on the reversed input,
    DIR-1/DIR-2), no mask; elsewhere the correct gradients."""

    name = "broken-grad-truncated-4"
    WINDOW = 4

    def gradients(self, handle, x, *, g_out, g_h, g_c, initial_state, mask=None, masked_output="carry",
                  training=False):
        cfg, T = handle.config, x.shape[1]
        call = dict(g_h=g_h, g_c=g_c, masked_output=masked_output, training=training)
        if T <= self.WINDOW or cfg.bidirectional or mask is not None:
            return super().gradients(handle, x, g_out=g_out, initial_state=initial_state, mask=mask, **call)
        fwd = self.build(cfg.replace(go_backwards=False), handle.weights)
        xs = x[:, ::-1] if cfg.go_backwards else x  # go_backwards: outputs in processing order (DIR-2)
        t0 = T - self.WINDOW
        head = lstm_forward(fwd.config.replace(return_sequences=True), fwd.weights, xs[:, :t0].astype(cfg.dtype),
                            initial_state=initial_state)
        carried = [list(zip(hs, cs)) for hs, cs in zip(head.h, head.c)]
        tail = super().gradients(fwd, xs[:, t0:], g_out=g_out[:, t0:] if cfg.return_sequences else g_out,
                                 initial_state=carried, **call)
        dx = np.zeros(x.shape, tail.x.dtype)
        dx[:, t0:] = tail.x
        zeros = lambda per: [[np.zeros_like(a) for a in dirs] for dirs in per]  # noqa: E731
        return GradientOutput(output=super().forward(handle, x, initial_state=initial_state),
                              x=dx[:, ::-1] if cfg.go_backwards else dx, h0=zeros(tail.h0), c0=zeros(tail.c0),
                              weights=tail.weights, kernel_path="truncated")


class MaskLeakGradientAdapter(NumpyAdapter):
    """Masked steps leak gradient: the input gradient at a masked step is the unmasked run's instead of 0 (a
    backward pass that masks the forward state update but not the gradient into the cell's input)."""

    name = "broken-grad-mask-leak"

    def gradients(self, handle, x, *, mask=None, **kw):
        g = super().gradients(handle, x, mask=mask, **kw)
        if mask is not None:
            free = super().gradients(handle, x, mask=None, **kw)
            g.x = np.where(mask[..., None], g.x, free.x)
        return g


class NeverInstalledAdapter(NumpyAdapter):
    """A backend whose framework is never importable: every property skips, so a run checks nothing."""

    name = "broken-never-installed"

    def unavailable_reason(self):
        return "meta test: this backend is never installed"


#: backend name -> (adapter class, property module, property (test function), a rule its fail record must name)
EXPECTED = {cls.name: (cls, f"conformance/properties/{module}", prop, rule) for cls, module, prop, rule in (
    (GateSwapAdapter, "test_equations.py", "test_forward_matches_reference", "GATE-1"),
    (NoForgetBiasAdapter, "test_equations.py", "test_forward_matches_reference", "GATE-1"),
    (GoBackwardsUnreversedAdapter, "test_direction.py", "test_go_backwards_output_in_processing_order", "DIR-2"),
    (PaddedEndStateAdapter, "test_masking.py", "test_masked_steps_keep_state", "MASK-1"),
    (Keras2HardSigmoidAdapter, "test_activations.py", "test_activation_choices_match_registry", "ACT-30"),
    (SecondBiasUncountedAdapter, "test_parameters.py", "test_param_count_matches_convention", "PARAM-2"),
    (Float16InsideAdapter, "test_numerics.py", "test_layer_computes_in_its_declared_dtype", "NUM-5"),
    (ReducedMantissaAdapter, "test_numerics.py", "test_layer_computes_in_its_declared_dtype", "NUM-5"),
    (AveAsSumAdapter, "test_direction.py", "test_bidirectional_merge_modes", "BIDI-2"),
    (StateResetAdapter, "test_equations.py", "test_long_sequences_match_reference", "GATE-3"),
    (TruncatedGradientAdapter, "test_gradients.py", "test_gradients_match_reference", "GRAD-1"),
    (MaskLeakGradientAdapter, "test_gradients.py", "test_masked_steps_pass_gradients_through", "GRAD-2"),
)}
