"""Exported-model backends: a framework's LSTM exported with the exporter its users use, the exported file
run by the runtime it is deployed with, on the weights of the same case.

``torch-onnx``: ``torch.nn.LSTM`` (built and loaded as the ``torch`` adapter builds it, LAYOUT-3) exported by
``torch.onnx.export`` and run in ONNX Runtime's CPU execution provider. Variants, one per exporter:
- ``torchscript``: the TorchScript-based exporter (``dynamo=False``; deprecated since torch 2.9, still in
  2.13), batch and time exported as dynamic axes;
- ``dynamo``: the torch.export-based exporter (``dynamo=True``, needs onnxscript), batch and time as
  ``torch.export.Dim``. Measured here (torch 2.13.0, 2 shared cores): 30-230 s per export, one export per
  case, so it runs only with ``LSTM_CONFORMANCE_SLOW_VARIANTS=1``.

Each case is exported at batch 2 and 3 steps and run at the case's own batch and length, so every check is
also a check of the dynamic axes (SHAPE-1, SHAPE-2). The exported graph is exported once per set of
inputs the case feeds (with or without ``(h0, c0)``). An exporter that refuses a config is a skip with the
exporter's message (*unsupported*); a graph that exports and then disagrees is a failure of the rule that
the check names. Masks are not offered: ``pack_padded_sequence`` is the torch way and has no ONNX form in
these exporters. ``param_count`` is the size of the graph's floating-point initializers.

Exported files go to a temporary folder per build, never into the repository; the folder is removed when
the handle is dropped, unless ``LSTM_CONFORMANCE_KEEP_EXPORTS=DIR`` asks to keep every exported file there.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reference import Config, Weights
from reference.weights import random_weights

from .base import Adapter, Capabilities, Output, Unsupported, canonical_output
from .shared import layer_major, per_layer

SLOW_VARIANTS_ENV = "LSTM_CONFORMANCE_SLOW_VARIANTS"
KEEP_EXPORTS_ENV = "LSTM_CONFORMANCE_KEEP_EXPORTS"
_EXPORT_BATCH, _EXPORT_STEPS = 2, 3  # the example input of every export; cases run at their own sizes


@dataclass
class _Handle:
    config: Config
    variant: str
    module: Any  # the torch nn.LSTM with the case's weights (batch_first)
    folder: Path
    sessions: dict = field(default_factory=dict)  # with initial state? -> (session, path)


class TorchOnnxAdapter(Adapter):
    name = "torch-onnx"
    framework = "torch -> onnx -> onnxruntime"
    exercises = ("LAYOUT-3",)
    variants = ("torchscript", "dynamo")
    requires = ("torch", "onnx", "onnxruntime")
    capabilities = Capabilities(
        options=frozenset({"return_sequences", "return_state", "bidirectional", "num_layers", "proj_size",
                           "use_bias=False", "initial_state"}),
        activations={"tanh": "tanh", "sigmoid": "sigmoid"},
        dtypes=("float32",),  # ONNX Runtime's CPU LSTM kernel runs float32 only
        merge_modes=("concat", "none"),
        bias_modes=("single", "double"),
        param_convention="torch",
        max_layers=4,
    )

    def __init__(self) -> None:
        from .torch import TorchAdapter

        self._torch = TorchAdapter()
        self._refusals: dict[tuple[str, str], str | None] = {}

    # ---- environment -------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        import onnx
        import onnxruntime
        import torch

        out = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
        try:
            import onnxscript

            out["onnxscript"] = onnxscript.__version__
        except ImportError:
            pass
        return out

    def variant_unavailable_reason(self, variant: str, device: str) -> str | None:
        if variant == "dynamo":
            try:
                import onnxscript  # noqa: F401
            except ImportError as exc:
                return f"the dynamo exporter needs onnxscript: {exc}"
            if not os.environ.get(SLOW_VARIANTS_ENV):
                return (f"slow: the dynamo exporter took 30-230 s per export here (one export per case); "
                        f"set {SLOW_VARIANTS_ENV}=1 to run it")
        return super().variant_unavailable_reason(variant, device)

    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        return ("zero",)

    def unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        reason = (self.variant_unavailable_reason(variant, device)
                  or self._torch.unsupported_reason(config, "batch_first", device)
                  or super().unsupported_reason(config, variant, device))
        if reason is None and config.proj_size:
            reason = self._refusal(variant, "proj_size")
        return reason

    def _refusal(self, variant: str, feature: str) -> str | None:
        """The exporter's own message when it refuses ``feature`` (probed once per variant on a one-unit
        module), or None when it exports it: a refused feature is a skip that names the exporter's words,
        decided before cases are drawn (a refusal at run time would reject every drawn case)."""
        key = (variant, feature)
        if key not in self._refusals:
            probe = Config(input_dim=1, units=2, proj_size=1 if feature == "proj_size" else 0, dtype="float32")
            try:
                handle = self.build(probe, random_weights(probe, np.random.default_rng(0)), variant=variant)
                self._export(handle, False)
                self._refusals[key] = None
            except Unsupported as exc:
                self._refusals[key] = str(exc)
        return self._refusals[key]

    # ---- building -----------------------------------------------------------------------------
    def build(self, config: Config, weights: Weights, *, variant: str = "torchscript", device: str = "cpu",
              stateful: bool = False) -> _Handle:
        import torch

        if stateful:
            raise Unsupported(f"{self.name}: an exported nn.LSTM keeps no state between runs")
        # the checks of unsupported_reason but the exporter's refusals (their probe builds through here)
        reason = (self.variant_unavailable_reason(variant, device)
                  or self._torch.unsupported_reason(config, "batch_first", device)
                  or super().unsupported_reason(config, variant, device))
        if reason:
            raise Unsupported(reason)
        th = self._torch.build(config, weights, variant="batch_first", device="cpu")
        # the module is the torch adapter's cached one: copy it, the export owns its weights
        module = torch.nn.LSTM(config.input_dim, config.units, num_layers=config.num_layers, bias=config.use_bias,
                               batch_first=True, bidirectional=config.bidirectional, proj_size=config.proj_size)
        module = module.to(dtype=getattr(torch, config.dtype)).eval()
        module.load_state_dict(th.params)
        keep = os.environ.get(KEEP_EXPORTS_ENV)
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{self.name}-{variant}-", dir=keep or None))
        handle = _Handle(config, variant, module, folder)
        if not keep:
            weakref.finalize(handle, shutil.rmtree, str(folder), True)
        return handle

    def _export(self, handle: _Handle, with_state: bool):
        import onnxruntime as ort
        import torch

        cfg = handle.config
        D, L = cfg.num_directions, cfg.num_layers
        x = torch.zeros(_EXPORT_BATCH, _EXPORT_STEPS, cfg.input_dim, dtype=getattr(torch, cfg.dtype))
        h0 = torch.zeros(D * L, _EXPORT_BATCH, cfg.hidden_size, dtype=x.dtype)
        c0 = torch.zeros(D * L, _EXPORT_BATCH, cfg.units, dtype=x.dtype)
        args = (x, (h0, c0)) if with_state else (x,)
        inputs = ["x", "h0", "c0"] if with_state else ["x"]
        path = handle.folder / f"lstm{'-state' if with_state else ''}.onnx"
        kw: dict[str, Any] = {"input_names": inputs, "output_names": ["y", "h_n", "c_n"]}
        if handle.variant == "dynamo":
            B, T = torch.export.Dim("B"), torch.export.Dim("T")
            kw["dynamic_shapes"] = ({0: B, 1: T}, ({1: B}, {1: B})) if with_state else ({0: B, 1: T},)
        else:
            axes = {"x": {0: "B", 1: "T"}, "y": {0: "B", 1: "T"}, "h_n": {1: "B"}, "c_n": {1: "B"}}
            if with_state:
                axes.update({"h0": {1: "B"}, "c0": {1: "B"}})
            kw["dynamic_axes"] = axes
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporters' deprecation and tracer warnings
                torch.onnx.export(handle.module, args, str(path), dynamo=handle.variant == "dynamo", **kw)
        except Exception as exc:  # the exporter's refusal, with its own words
            raise Unsupported(f"torch.onnx.export ({handle.variant}) refuses: {type(exc).__name__}: "
                              f"{_first_line(exc)}") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3  # the dynamo graph declares y's time axis static: a warning per run
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]), path

    def _session(self, handle: _Handle, with_state: bool):
        if with_state not in handle.sessions:
            handle.sessions[with_state] = self._export(handle, with_state)
        return handle.sessions[with_state][0]

    # ---- running ------------------------------------------------------------------------------
    def forward(self, handle: _Handle, x: np.ndarray, *, mask: np.ndarray | None = None, initial_state=None,
                masked_output: str = "zero") -> Output:
        cfg = handle.config
        D, L = cfg.num_directions, cfg.num_layers
        if mask is not None:
            raise Unsupported(f"{self.name}: masks are packed sequences in torch, which these exporters do not export")
        session = self._session(handle, initial_state is not None)
        feed = {"x": np.ascontiguousarray(x, dtype=cfg.dtype)}
        if initial_state is not None:
            h0, c0 = layer_major(initial_state)  # STATE-1: (D*L, B, H) layer-major
            feed["h0"], feed["c0"] = np.stack(h0).astype(cfg.dtype), np.stack(c0).astype(cfg.dtype)
        y, hn, cn = session.run(["y", "h_n", "c_n"], feed)
        H = cfg.hidden_size
        output = canonical_output(cfg, y[..., :H], y[..., H:]) if D == 2 else canonical_output(cfg, y)
        return Output(output=output, h=per_layer(hn, L, D), c=per_layer(cn, L, D),
                      kernel_path=f"onnxruntime-cpu:{handle.variant}")

    def param_count(self, handle: _Handle) -> int:
        """The size of the exported graph's floating-point initializers (its weights; shape constants are
        integers), from the file of the first export."""
        import onnx
        from onnx import TensorProto

        if not handle.sessions:
            self._session(handle, False)
        path = next(iter(handle.sessions.values()))[1]
        floats = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
        model = onnx.load(str(path))
        return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in floats))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
