"""Exported-model backends: a framework's LSTM exported with the exporter its users use, the exported file
run by the runtime it is deployed with, on the weights of the same case.

``torch-onnx`` and ``torch-onnx-dynamo``: ``torch.nn.LSTM`` (its weights converted as the ``torch`` adapter
converts them, LAYOUT-3) exported by ``torch.onnx.export`` and run in ONNX Runtime's CPU execution provider,
one backend per exporter:
- ``torch-onnx``: the TorchScript-based exporter (``dynamo=False``; deprecated since torch 2.9, still in
  2.13), batch and time exported as dynamic axes. It refuses a projection ("Unsupported: ONNX export of
  operator LSTM, LSTMs with projections"), so ``proj_size`` is not offered.
- ``torch-onnx-dynamo``: the torch.export-based exporter (``dynamo=True``, needs onnxscript), batch and
  time as ``torch.export.Dim``. Measured here (torch 2.13.0, 2 shared cores): 30-230 s per export, one
  export per case, so it runs only with ``LSTM_CONFORMANCE_SLOW_VARIANTS=1`` (tox env ``torch-onnx-dynamo``,
  outside the ``conformance`` label).

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
import re
import shutil
import tempfile
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reference import Config, Weights

from .base import Adapter, Capabilities, Output, Unsupported, canonical_output
from .shared import layer_major, per_layer
from .torch import SLOW_VARIANTS_ENV  # one switch for every slow variant
KEEP_EXPORTS_ENV = "LSTM_CONFORMANCE_KEEP_EXPORTS"
_EXPORT_BATCH, _EXPORT_STEPS = 2, 3  # the example input of every export; cases run at their own sizes


@dataclass
class ExportFolder:
    """A temporary folder for one export, never in the repository: removed when the object it is tied to
    (:meth:`remove_with`) is dropped, unless ``LSTM_CONFORMANCE_KEEP_EXPORTS=DIR`` keeps every export in DIR."""

    path: Path
    keep: bool

    def remove_with(self, owner) -> None:
        if not self.keep:
            weakref.finalize(owner, shutil.rmtree, str(self.path), True)


def export_folder(prefix: str) -> ExportFolder:
    keep = os.environ.get(KEEP_EXPORTS_ENV)
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    return ExportFolder(Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=keep or None)), bool(keep))


class InferenceOnlyExport:
    """What an exported or converted Keras path answers the same way whatever its runtime (mixed in before the
    Keras adapter): the files the last call ran, and no bare call, gradients, dropout or training mode."""

    runtime = "the runtime"  # what runs the graph, e.g. "ONNX Runtime"
    graph = "an exported graph"
    per_case = "an export"  # what every case costs

    def artifacts(self) -> list:
        return [p for p in getattr(self, "_last", []) if p.exists()]

    def bare_forward(self, handle, x):
        raise Unsupported(f"{self.name}: no bare call measured (every case is {self.per_case})")

    def gradient_unsupported_reason(self, config, variant, device):
        return f"{self.name}: {self.runtime} computes no gradients"

    def dropout_unsupported_reason(self, config, variant, device):
        return f"{self.name}: {self.graph} runs inference only"

    def forward_training(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        raise Unsupported(f"{self.name}: {self.graph} runs inference only")


@dataclass
class _Handle:
    config: Config
    variant: str
    module: Any  # the torch nn.LSTM with the case's weights (batch_first)
    folder: Path
    sessions: dict = field(default_factory=dict)  # with initial state? -> (session, path)


class TorchOnnxAdapter(Adapter):
    name = "torch-onnx"
    framework = "torch -> onnx (TorchScript exporter) -> onnxruntime"
    exporter = "torchscript"
    exercises = ("LAYOUT-3",)
    variants = ("torchscript",)
    requires = ("torch", "onnx", "onnxruntime")
    capabilities = Capabilities(
        options=frozenset({"return_sequences", "return_state", "bidirectional", "num_layers", "use_bias=False",
                           "initial_state"}),
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
        
    # ---- environment -------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        import onnx
        import onnxruntime
        import torch

        out = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
        if self.exporter == "dynamo":
            import onnxscript

            out["onnxscript"] = onnxscript.__version__
        return out

    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        return ("zero",)

    def unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        return (self.variant_unavailable_reason(variant, device)
                or self._torch.unsupported_reason(config, "batch_first", device)
                or super().unsupported_reason(config, variant, device))

    # ---- building -----------------------------------------------------------------------------
    def build(self, config: Config, weights: Weights, *, variant: str = "", device: str = "cpu",
              stateful: bool = False) -> _Handle:
        import torch

        if stateful:
            raise Unsupported(f"{self.name}: an exported nn.LSTM keeps no state between runs")
        variant = variant or self.variants[0]
        self.require_supported(config, variant, device)
        th = self._torch.build(config, weights, variant="batch_first", device="cpu")
        # the module is the torch adapter's cached one: copy it, the export owns its weights
        module = torch.nn.LSTM(config.input_dim, config.units, num_layers=config.num_layers, bias=config.use_bias,
                               batch_first=True, bidirectional=config.bidirectional, proj_size=config.proj_size)
        module = module.to(dtype=getattr(torch, config.dtype)).eval()
        module.load_state_dict(th.params)
        folder = export_folder(f"{self.name}-{variant}")
        handle = _Handle(config, variant, module, folder.path)
        folder.remove_with(handle)
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
        if self.exporter == "dynamo":
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
                torch.onnx.export(handle.module, args, str(path), dynamo=self.exporter == "dynamo", **kw)
        except Exception as exc:  # the exporter's refusal, with its own words
            raise Unsupported(f"torch.onnx.export ({self.exporter} exporter) refuses: {type(exc).__name__}: "
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
        self._last = [handle.sessions[initial_state is not None][1]]  # artifacts(): the graph this call ran
        feed = {"x": np.ascontiguousarray(x, dtype=cfg.dtype)}
        if initial_state is not None:
            h0, c0 = layer_major(initial_state)  # STATE-1: (D*L, B, H) layer-major
            feed["h0"], feed["c0"] = np.stack(h0).astype(cfg.dtype), np.stack(c0).astype(cfg.dtype)
        y, hn, cn = session.run(["y", "h_n", "c_n"], feed)
        H = cfg.hidden_size
        output = canonical_output(cfg, y[..., :H], y[..., H:]) if D == 2 else canonical_output(cfg, y)
        return Output(output=output, h=per_layer(hn, L, D), c=per_layer(cn, L, D),
                      kernel_path=f"onnxruntime-cpu:{handle.variant}")

    def artifacts(self) -> list:
        return [p for p in getattr(self, "_last", []) if p.exists()]

    def param_count(self, handle: _Handle) -> int:
        """The size of the exported graph's floating-point initializers (its weights; shape constants are
        integers), from the file of the first export."""
        import onnx
        from onnx import TensorProto

        if not handle.sessions:
            self._session(handle, False)
        path = next(iter(handle.sessions.values()))[1]
        self._last = [path]  # artifacts(): the graph this count read
        floats = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
        model = onnx.load(str(path))
        return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in floats))


def _first_line(exc: Exception) -> str:
    """The first line of the message that says what went wrong: past Keras' wrapper line ("Exception encountered
    when calling LSTM.call()."), without its terminal colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        lines = lines[1:]
    return lines[0][:300] if lines else ""


class TorchOnnxDynamoAdapter(TorchOnnxAdapter):
    name = "torch-onnx-dynamo"
    framework = "torch -> onnx (dynamo exporter) -> onnxruntime"
    exporter = "dynamo"
    variants = ("dynamo",)
    requires = ("torch", "onnx", "onnxruntime", "onnxscript")
    # the dynamo exporter exports a projection (torch 2.13.0, onnxscript 0.7.2)
    capabilities = Capabilities(
        options=TorchOnnxAdapter.capabilities.options | {"proj_size"},
        activations=TorchOnnxAdapter.capabilities.activations, dtypes=("float32",), merge_modes=("concat", "none"),
        bias_modes=("single", "double"), param_convention="torch", max_layers=4)

    def variant_unavailable_reason(self, variant: str, device: str) -> str | None:
        if not os.environ.get(SLOW_VARIANTS_ENV):
            return (f"slow: the dynamo exporter took 30-230 s per export here (one export per case); "
                    f"set {SLOW_VARIANTS_ENV}=1 to run it")
        return super().variant_unavailable_reason(variant, device)
