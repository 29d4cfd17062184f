"""The ``numpy`` adapter: the reference itself run in the dtype under test.

It needs no framework, so ``tox -e tests`` exercises the whole harness (strategies, comparison,
recording, reports); the meta tests break it on purpose to prove the checks can fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import reference
from reference import Config, Weights, lstm_backward, lstm_forward

from .base import Adapter, Capabilities, GradientOutput, Output, Unsupported

_ALL_ACTIVATIONS = {name: name for name in reference.activation_names()}


@dataclass
class _Handle:
    config: Config
    weights: Weights
    stateful: bool
    state: list | None = None


class NumpyAdapter(Adapter):
    name = "numpy"
    framework = "numpy"
    capabilities = Capabilities(
        options=frozenset({"return_sequences", "return_state", "go_backwards", "bidirectional", "num_layers",
                           "proj_size", "peepholes", "cell_clip", "input_forget", "use_bias=False",
                           "initial_state", "mask", "lengths", "stateful"}),
        activations=_ALL_ACTIVATIONS,
        dtypes=("float16", "float32", "float64"),
        merge_modes=("concat", "sum", "mul", "ave", "none"),
        bias_modes=("single", "double"),
        max_layers=4,
    )

    def versions(self) -> dict[str, str]:
        return {"numpy": np.__version__}

    def unsupported_reason(self, config, variant, device):
        reason = super().unsupported_reason(config, variant, device)
        if reason is None and config.peepholes and config.proj_size:
            return "no parameter convention has both peepholes and a projection"
        return reason

    def build(self, config, weights, *, variant="default", device="cpu", stateful=False):
        return _Handle(config, weights.astype(config.dtype), stateful)

    def forward(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        cfg = handle.config
        if handle.stateful and initial_state is None and handle.state is not None:
            initial_state = handle.state  # STATE-3: stored state continues
        res = lstm_forward(cfg, handle.weights, x.astype(cfg.dtype), mask=mask, initial_state=initial_state,
                           masked_output=masked_output)
        if handle.stateful:
            handle.state = [list(zip(hs, cs)) for hs, cs in zip(res.h, res.c)]
        return Output(output=res.output, h=res.h, c=res.c, kernel_path="numpy-reference")

    def gradient_unsupported_reason(self, config, variant, device):
        return None  # GRAD-1: reference.lstm_backward covers every option the forward pass does

    def gradients(self, handle, x, *, g_out, g_h, g_c, initial_state, mask=None, masked_output="carry",
                  training=False):
        """GRAD-1: the reference backward pass in the config dtype (cotangents and state cast to it)."""
        cfg = handle.config
        dt = cfg.dtype
        cast = lambda a: np.asarray(a, dt)  # noqa: E731
        g_out = tuple(map(cast, g_out)) if isinstance(g_out, (tuple, list)) else cast(g_out)
        init = [[(cast(h), cast(c)) for h, c in dirs] for dirs in initial_state]
        g = lstm_backward(cfg, handle.weights, x.astype(dt), g_out=g_out,
                          g_h=[[cast(a) for a in dirs] for dirs in g_h], g_c=[[cast(a) for a in dirs] for dirs in g_c],
                          mask=mask, initial_state=init, masked_output=masked_output)
        res = g.forward
        return GradientOutput(output=Output(output=res.output, h=res.h, c=res.c, kernel_path="numpy-reference"),
                              x=g.x, h0=g.h0, c0=g.c0, weights=g.weights, kernel_path="numpy-reference")

    def param_count(self, handle):
        # The reference "framework" reports the size of the canonical arrays it holds.
        cfg = handle.config
        if self.param_convention(cfg) in ("torch", "onnx") and cfg.use_bias and cfg.bias_mode == "single":
            raise Unsupported("one bias with peepholes/projection: the torch and ONNX conventions count two")
        return int(sum(a.size for a in handle.weights.flat().values()))

    def param_convention(self, config):
        if config.peepholes:
            return "onnx"
        if config.proj_size or (config.use_bias and config.bias_mode == "double"):
            return "torch"
        return "keras"

    def bare_forward(self, handle, x):
        xd = x.astype(handle.config.dtype)
        return lambda: lstm_forward(handle.config, handle.weights, xd)

    def reset_state(self, handle):
        handle.state = None

    def default_weights(self, config):
        raise Unsupported("numpy reference has no framework default initialisation")
