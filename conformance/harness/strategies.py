"""Hypothesis strategies: configs, weights and inputs drawn inside an adapter's capabilities.

Sizes follow the suite's contract: units 1-128, input_dim 1-128, timesteps 1-64 with occasional long
sequences up to 512, batch 1-8; weights random and asymmetric per gate at scales from tiny to saturating;
inputs at several scales; right-padded and arbitrary masks including fully masked rows.
Small sizes are drawn most often (cheap, and hypothesis shrinks towards them); large ones stay possible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from reference import Config, Weights, random_weights

from ..adapters.base import Adapter

__all__ = ["Case", "cases", "WEIGHT_SCALES", "INPUT_SCALES"]

WEIGHT_SCALES = (0.01, 0.3, 1.0, 2.0, 6.0)  # 6.0 saturates sigmoid/tanh on most steps
INPUT_SCALES = (0.1, 1.0, 3.0)
_COMMON_ACTIVATIONS = ("tanh", "sigmoid")
_CONFIG_DEFAULTS = Config(input_dim=1, units=1).to_dict()


@dataclass
class Case:
    """One drawn check input: everything needed to run and to reproduce it."""

    config: Config
    weights: Weights
    x: np.ndarray  # float64 (B, T, d)
    mask: np.ndarray | None = None  # bool (B, T), True = valid
    mask_kind: str = "none"  # none | right-padded | arbitrary
    initial_state: list | None = None  # [[(h0, c0)] per direction] per layer, float64
    masked_output: str = "carry"
    seed: int = 0
    weight_scale: float = 1.0
    input_scale: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict:
        return {
            "config": self.config.to_dict(), "batch": int(self.x.shape[0]), "timesteps": int(self.x.shape[1]),
            "mask": self.mask_kind, "masked_output": self.masked_output, "seed": self.seed,
            "weight_scale": self.weight_scale, "input_scale": self.input_scale,
            "initial_state": self.initial_state is not None, **self.extra,
        }

    def brief(self) -> str:
        """The case in one line: the fields that differ from the defaults, sizes and input options."""
        cfg = self.config
        changed = {k: v for k, v in cfg.to_dict().items()
                   if k not in ("input_dim", "units", "dtype") and v != _CONFIG_DEFAULTS.get(k)}
        parts = [cfg.dtype, f"B={self.x.shape[0]} T={self.x.shape[1]} d={cfg.input_dim} u={cfg.units}",
                 *(f"{k}={v}" for k, v in changed.items()), f"weight_scale={self.weight_scale:g}",
                 f"input_scale={self.input_scale:g}", f"seed={self.seed}"]
        if self.mask is not None:
            parts.append(f"mask={self.mask_kind} masked_output={self.masked_output}")
        if self.initial_state is not None:
            parts.append("initial_state")
        parts += [f"{k}={v}" for k, v in self.extra.items()]
        return " ".join(parts)

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything numeric, flat, for ``np.savez`` repro blobs."""
        out = {f"w_{k}": v for k, v in self.weights.flat().items()}
        out["x"] = self.x
        if self.mask is not None:
            out["mask"] = self.mask
        if self.initial_state is not None:
            for l, dirs in enumerate(self.initial_state):
                for d, (h0, c0) in enumerate(dirs):
                    out[f"h0_l{l}_d{d}"], out[f"c0_l{l}_d{d}"] = h0, c0
        return out


def _size(draw, small_hi: int, hi: int) -> int:
    # mostly small (fast, good shrink targets), sometimes up to the contract's maximum
    return draw(st.one_of(st.integers(1, small_hi), st.integers(1, small_hi), st.integers(1, hi)))


@st.composite
def cases(draw, adapter: Adapter, variant: str = "default", device: str = "cpu", *, fixed: dict | None = None,
          mask: bool | None = None, initial_state: bool | None = None, max_timesteps: int = 64,
          long_sequences: bool = True) -> Case:
    """A :class:`Case` the adapter can run. ``fixed`` forces Config fields; ``mask``/``initial_state``
    force (True/False) or leave to chance (None) those inputs."""
    caps = adapter.capabilities
    opts = caps.options
    fixed = dict(fixed or {})

    def flag(option: str, field_name: str | None = None) -> bool:
        name = field_name or option
        if name in fixed:
            return fixed.pop(name)
        return option in opts and draw(st.booleans())

    kw: dict[str, Any] = {}
    kw["input_dim"] = fixed.pop("input_dim", None) or _size(draw, 8, 128)
    kw["units"] = fixed.pop("units", None) or _size(draw, 8, 128)
    registry = sorted(set(caps.activations.values()))
    common = [a for a in _COMMON_ACTIVATIONS if a in registry]
    kw["activation"] = fixed.pop("activation", None) or draw(
        st.one_of(st.sampled_from(["tanh"] if "tanh" in registry else registry), st.sampled_from(registry)))
    kw["recurrent_activation"] = fixed.pop("recurrent_activation", None) or draw(
        st.one_of(st.sampled_from(common[1:] or registry), st.sampled_from(registry)))
    kw["return_sequences"] = fixed.pop("return_sequences", draw(st.booleans()))
    kw["return_state"] = fixed.pop("return_state", True)
    kw["bidirectional"] = flag("bidirectional")
    if kw["bidirectional"]:
        kw["merge_mode"] = fixed.pop("merge_mode", None) or draw(st.sampled_from(caps.merge_modes))
    else:
        fixed.pop("merge_mode", None)
    kw["go_backwards"] = False if kw["bidirectional"] else flag("go_backwards")
    kw["num_layers"] = fixed.pop("num_layers", None) or (
        draw(st.integers(1, min(3, caps.max_layers))) if "num_layers" in opts else 1)
    if kw.get("merge_mode") == "none" and kw["num_layers"] > 1:
        kw["merge_mode"] = "concat"
    kw["use_bias"] = fixed.pop("use_bias", None)
    if kw["use_bias"] is None:
        kw["use_bias"] = not ("use_bias=False" in opts and draw(st.integers(0, 4)) == 0)
    kw["bias_mode"] = fixed.pop("bias_mode", None) or (draw(st.sampled_from(caps.bias_modes)) if kw["use_bias"] else "single")
    if "proj_size" in fixed:
        kw["proj_size"] = fixed.pop("proj_size")
    elif "proj_size" in opts and kw["units"] > 1 and draw(st.booleans()):
        kw["proj_size"] = draw(st.integers(1, kw["units"] - 1))
    kw["peepholes"] = flag("peepholes")
    if "cell_clip" in fixed:
        kw["cell_clip"] = fixed.pop("cell_clip")
    elif "cell_clip" in opts and draw(st.integers(0, 3)) == 0:
        kw["cell_clip"] = draw(st.sampled_from([0.5, 1.0, 3.0]))
    kw["input_forget"] = flag("input_forget")
    kw["dtype"] = fixed.pop("dtype", None) or draw(st.sampled_from([d for d in caps.dtypes if d != "float16"] or caps.dtypes))
    kw.update(fixed)
    config = Config(**kw)
    assume(adapter.unsupported_reason(config, variant, device) is None)

    batch = draw(st.integers(1, 8))
    long = long_sequences and max_timesteps >= 64 and draw(st.integers(0, 24)) == 0
    timesteps = draw(st.integers(65, 512)) if long else draw(st.one_of(st.integers(1, 8), st.integers(1, max_timesteps)))
    seed = draw(st.integers(0, 2**32 - 1))
    weight_scale = draw(st.sampled_from(WEIGHT_SCALES))
    input_scale = draw(st.sampled_from(INPUT_SCALES))
    rng = np.random.default_rng(seed)
    weights = random_weights(config, rng, scale=weight_scale)
    x = rng.normal(size=(batch, timesteps, config.input_dim)) * input_scale

    use_mask = ("mask" in opts or "lengths" in opts) and (draw(st.booleans()) if mask is None else mask)
    m, mask_kind = None, "none"
    if use_mask:
        kinds = ["right-padded"] + (["arbitrary"] if caps.arbitrary_masks and "mask" in opts else [])
        mask_kind = draw(st.sampled_from(kinds))
        lo = 0 if caps.fully_masked_rows else 1
        if mask_kind == "right-padded":
            lengths = np.array([draw(st.integers(lo, timesteps)) for _ in range(batch)])
            m = np.arange(timesteps)[None, :] < lengths[:, None]
        else:
            m = rng.random((batch, timesteps)) < draw(st.sampled_from([0.3, 0.7, 0.9]))
            if not caps.fully_masked_rows:
                m[:, 0] |= ~m.any(axis=1)
            elif draw(st.booleans()):
                m[rng.integers(batch)] = False  # a fully masked row
    rules = adapter.masked_output_rules(config, variant)
    masked_output = draw(st.sampled_from(rules)) if use_mask else rules[0]

    init = None
    want_init = "initial_state" in opts and (draw(st.booleans()) if initial_state is None else initial_state)
    if want_init:
        init = [[(rng.normal(size=(batch, config.hidden_size)) * 0.5, rng.normal(size=(batch, config.units)) * 0.5)
                 for _ in range(config.num_directions)] for _ in range(config.num_layers)]
    return Case(config, weights, x, m, mask_kind, init, masked_output, seed, weight_scale, input_scale)
