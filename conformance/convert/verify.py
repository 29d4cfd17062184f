"""Verifying a port: both frameworks' layers and the reference on the same random inputs (NUM-1).

The reference runs the canonical weights read from the source file (float64): that is the truth. The
source framework's layer runs the source weights, the target framework's layer the weights read back
from the converted file, each through its adapter, and each is judged against the reference with the
error model (errors.compare: ratio vs K) per output: the last layer's output sequence, and h and c of
every layer and direction. The reference run on the read-back weights is always judged too, so a side
whose framework does not import here is still verified, by the reference alone, and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import numpy as np

from reference import Config, Weights, lstm_forward

from ..adapters import load
import conformance.convert.formats as formats
from ..harness import errors

__all__ = ["Side", "verify", "adapter_name", "BATCH", "TIMESTEPS"]

BATCH, TIMESTEPS = 2, 5
#: ONNX Runtime's CPU LSTM runs float32 only; torch and Keras files are float32 by default
DTYPE = "float32"


def adapter_name(fmt: str) -> str:
    if fmt == "keras":  # Keras 3 on the backend this process uses (formats._import_keras chose it)
        try:
            return f"keras-{formats._import_keras().backend.backend()}"
        except Exception:  # keras not installed, or KERAS_BACKEND names no backend: that side says why, not run
            return f"keras-{os.environ.get('KERAS_BACKEND', 'tensorflow')}"
    return {"torch": "torch", "onnx": "onnxruntime", "flax": "flax"}[fmt]


@dataclass
class Side:
    """One column of the table: who ran, on which weights; ``ratios`` per output; ``skipped`` why not run."""

    label: str
    ratios: dict[str, float] = field(default_factory=dict)
    skipped: str = ""
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.failed


def _items(res, config: Config) -> dict[str, np.ndarray]:
    out = {"output": res.output}
    for l in range(config.num_layers):
        for d in range(config.num_directions):
            tag = f"l{l} {'bwd' if d else 'fwd'}"
            out[f"h {tag}"], out[f"c {tag}"] = res.h[l][d], res.c[l][d]
    return out


def _judge(side: Side, got: dict, ref64: dict, oracles: list[dict]) -> Side:
    for name, want in ref64.items():
        cmp = errors.compare(errors.flatten_outputs(got[name]), errors.flatten_outputs(want),
                             [errors.flatten_outputs(o[name]) for o in oracles], DTYPE)
        side.ratios[name] = cmp.ratio
        if not cmp.passed:
            side.failed.append(f"{name}: {cmp.inconclusive or cmp.note or f'ratio {cmp.ratio:.3g} > K={errors.K:g}'}")
    return side


def _run_adapter(name: str, config: Config, weights: Weights, x: np.ndarray, ref) -> dict | str:
    """The adapter's outputs as ``_items``, or why it did not run. An adapter that runs one layer per call
    (ONNX Runtime: one node is one layer) runs each layer on the reference's input to that layer."""
    try:
        adapter = load(name)
    except ImportError as exc:
        return f"{name} is not importable here ({exc})"
    except ValueError as exc:  # e.g. KERAS_BACKEND names a backend no adapter runs
        return str(exc)
    reason = adapter.unavailable_reason()
    if reason:
        return f"{name} is not available here ({reason})"
    per_layer = config.num_layers > adapter.capabilities.max_layers
    one = replace(config, num_layers=1) if per_layer else config
    reason = adapter.unsupported_reason(one, adapter.variants[0], "cpu")
    if reason:
        return reason
    if not per_layer:
        return _items(adapter.forward(adapter.build(config, weights), x), config)
    items = {}
    for l in range(config.num_layers):
        cfg = replace(one, input_dim=x.shape[2] if l == 0 else ref.sequences[l - 1].shape[2])
        out = adapter.forward(adapter.build(cfg, Weights([weights.layers[l]])), x if l == 0 else ref.sequences[l - 1])
        for d in range(config.num_directions):
            tag = f"l{l} {'bwd' if d else 'fwd'}"
            items[f"h {tag}"], items[f"c {tag}"] = out.h[0][d], out.c[0][d]
        items["output"] = out.output
    return items


def verify(source_config: Config, source_fmt: str, source: Weights, target_config: Config, target_fmt: str,
           target: Weights, seed: int = 0) -> list[Side]:
    """Judge the source framework (source weights), the target framework (converted weights read back) and
    the reference on the converted weights, each against the reference on the source weights. The two
    configs differ only in ``bias_mode`` (a torch/ONNX file keeps its two biases, a Keras one has one)."""
    config, target_config = (replace(c, return_sequences=True, return_state=True, dtype=DTYPE)
                             for c in (source_config, target_config))
    x = np.random.default_rng(seed).standard_normal((BATCH, TIMESTEPS, config.input_dim))
    ref = lstm_forward(config, source, x, dtype="float64")
    ref64 = _items(ref, config)
    oracles = [_items(o, config) for o in errors.oracle_references(config, source, x, seed=seed)]
    sides = [_judge(Side("reference (converted weights)"),
                    _items(lstm_forward(target_config, target, x, dtype="float64"), config), ref64, oracles)]
    for role, fmt, cfg, weights in (("source", source_fmt, config, source), ("target", target_fmt, target_config,
                                                                                     target)):
        name = adapter_name(fmt)
        side = Side(f"{name} ({role})")
        got = _run_adapter(name, cfg, weights, x, ref)
        if isinstance(got, str):
            side.skipped = got
        else:
            _judge(side, got, ref64, oracles)
        sides.append(side)
    return sides
