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

__all__ = ["Case", "cases", "Regime", "TYPICAL", "STRESS", "STRESS_SHARE"]

_COMMON_ACTIVATIONS = ("tanh", "sigmoid")
#: activations whose output is bounded whatever the input: a TYPICAL case cannot explode through them
BOUNDED_ACTIVATIONS = frozenset({"tanh", "sigmoid", "hard_sigmoid_keras2", "hard_sigmoid_keras3", "softsign",
                                 "onnx_hard_sigmoid", "onnx_scaled_tanh"})


@dataclass(frozen=True)
class Regime:
    """Where a case's numbers come from. The first entry of each scale tuple is the shrink target (1.0: a
    trained-network scale, where a semantic slip shows at full size rather than just above K)."""

    name: str
    weight_scales: tuple[float, ...]
    input_scales: tuple[float, ...]
    unbounded_activations: bool
    long_sequences: bool


#: framework-default weight scales (random_weights' scale 1 ~ glorot/orthogonal), bounded activations, T <= 64
TYPICAL = Regime("typical", weight_scales=(1.0, 0.3), input_scales=(1.0, 0.1), unbounded_activations=False,
                 long_sequences=False)
#: saturating (6.0) and near-linear (0.01) weights, large inputs, unbounded activations, sequences up to 512
STRESS = Regime("stress", weight_scales=(1.0, 2.0, 6.0, 0.01), input_scales=(1.0, 3.0, 0.1),
                unbounded_activations=True, long_sequences=True)
#: share of STRESS cases per hypothesis profile (the rest are TYPICAL)
STRESS_SHARE = {"dev": 0.3, "ci": 0.3, "thorough": 0.5}
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
    regime: str = "typical"
    last_output: str = "last-step"  # MASK-2 reading the adapter's governing text gives (Adapter.last_output_reading)

    def describe(self) -> dict:
        return {
            "config": self.config.to_dict(), "batch": int(self.x.shape[0]), "timesteps": int(self.x.shape[1]),
            "mask": self.mask_kind, "masked_output": self.masked_output, "seed": self.seed,
            "weight_scale": self.weight_scale, "input_scale": self.input_scale,
            "initial_state": self.initial_state is not None, "regime": self.regime, "last_output": self.last_output,
            **self.extra,
        }

    def __repr__(self) -> str:  # hypothesis prints drawn values in a falsifying example: one line, no arrays
        return f"Case({self.brief()})"

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis' pretty printer looks for this first
        printer.text(repr(self))

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


def _rarely(draw, one_in: int, label: str) -> bool:
    """True about once in ``one_in`` draws. The rare branch is the *last* integer, so shrinking (towards 0)
    switches it off: a minimal example keeps a rare option only when the failure needs it."""
    return draw(st.integers(0, one_in - 1), label=label) == one_in - 1


def _regime(draw) -> Regime:
    """TYPICAL most of the time (the shrink target), STRESS in the profile's share of cases."""
    tenths = round(10 * STRESS_SHARE.get(_profile(), STRESS_SHARE["dev"]))
    return STRESS if draw(st.integers(0, 9), label="regime") >= 10 - tenths else TYPICAL


def _profile() -> str:
    from hypothesis import settings

    return str(getattr(settings, "_current_profile", None) or "dev")


@st.composite
def cases(draw, adapter: Adapter, variant: str = "default", device: str = "cpu", *, fixed: dict | None = None,
          mask: bool | None = None, initial_state: bool | None = None, max_timesteps: int = 64,
          long_sequences: bool = True, regime: Regime | None = None, timesteps: tuple[int, int] | None = None) -> Case:
    """A :class:`Case` the adapter can run. ``fixed`` forces Config fields; ``mask``/``initial_state``
    force (True/False) or leave to chance (None) those inputs; ``regime`` forces TYPICAL or STRESS;
    ``timesteps`` forces the sequence length into a range (e.g. past 64, on purpose)."""
    caps = adapter.capabilities
    opts = adapter.variant_options(variant)  # what this variant runs (a variant may offer fewer options)
    fixed = dict(fixed or {})
    regime = regime or _regime(draw)

    def flag(option: str) -> bool:
        if option in fixed:
            return fixed.pop(option)
        return option in opts and draw(st.booleans(), label=option)

    kw: dict[str, Any] = {}
    kw["input_dim"] = fixed.pop("input_dim", None) or _size(draw, 8, 128)
    kw["units"] = fixed.pop("units", None) or _size(draw, 8, 128)
    registry = sorted(set(caps.activations.values()))
    allowed = [a for a in registry if regime.unbounded_activations or a in BOUNDED_ACTIVATIONS] or registry
    # the first choice of each one_of is the shrink target: the defaults tanh / sigmoid
    kw["activation"] = fixed.pop("activation", None) or draw(
        st.one_of(st.sampled_from(["tanh"] if "tanh" in registry else allowed), st.sampled_from(allowed)))
    common = [a for a in _COMMON_ACTIVATIONS if a in registry]
    kw["recurrent_activation"] = fixed.pop("recurrent_activation", None) or draw(
        st.one_of(st.sampled_from(common[1:] or allowed), st.sampled_from(allowed)))
    kw["return_sequences"] = fixed.pop("return_sequences", None)
    if kw["return_sequences"] is None:
        kw["return_sequences"] = draw(st.booleans(), label="return_sequences")
    kw["return_state"] = fixed.pop("return_state", True)
    kw["bidirectional"] = flag("bidirectional")
    if kw["bidirectional"]:
        kw["merge_mode"] = fixed.pop("merge_mode", None) or draw(st.sampled_from(caps.merge_modes), label="merge_mode")
    else:
        fixed.pop("merge_mode", None)
    kw["go_backwards"] = False if kw["bidirectional"] else flag("go_backwards")
    kw["num_layers"] = fixed.pop("num_layers", None) or (
        draw(st.integers(1, min(3, caps.max_layers)), label="num_layers") if "num_layers" in opts else 1)
    if kw.get("merge_mode") == "none" and kw["num_layers"] > 1:
        kw["merge_mode"] = "concat"
    kw["use_bias"] = fixed.pop("use_bias", None)
    if kw["use_bias"] is None:
        kw["use_bias"] = not ("use_bias=False" in opts and _rarely(draw, 5, "no_bias"))
    kw["bias_mode"] = fixed.pop("bias_mode", None) or (
        draw(st.sampled_from(caps.bias_modes), label="bias_mode") if kw["use_bias"] else "single")
    if "proj_size" in fixed:
        kw["proj_size"] = fixed.pop("proj_size")
    elif "proj_size" in opts and kw["units"] > 1 and draw(st.booleans(), label="projection"):
        kw["proj_size"] = draw(st.integers(1, kw["units"] - 1), label="proj_size")
    kw["peepholes"] = flag("peepholes")
    if "cell_clip" in fixed:
        kw["cell_clip"] = fixed.pop("cell_clip")
    elif "cell_clip" in opts and _rarely(draw, 4, "clip"):
        kw["cell_clip"] = draw(st.sampled_from([3.0, 1.0, 0.5]), label="cell_clip")
    kw["input_forget"] = flag("input_forget")
    kw["dtype"] = fixed.pop("dtype", None) or draw(
        st.sampled_from([d for d in caps.dtypes if d != "float16"] or caps.dtypes), label="dtype")
    kw.update(fixed)
    config = Config(**kw)
    assume(adapter.unsupported_reason(config, variant, device) is None)

    batch = draw(st.integers(1, 8), label="batch")
    long = long_sequences and regime.long_sequences and max_timesteps >= 64 and _rarely(draw, 8, "long")
    if timesteps is not None:
        timesteps = draw(st.integers(*timesteps), label="timesteps")
    elif long:
        timesteps = draw(st.integers(65, 512), label="timesteps")
    else:
        timesteps = draw(st.one_of(st.integers(1, 8), st.integers(1, max_timesteps)), label="timesteps")
    seed = draw(st.integers(0, 2**32 - 1), label="seed")
    weight_scale = draw(st.sampled_from(regime.weight_scales), label="weight_scale")
    input_scale = draw(st.sampled_from(regime.input_scales), label="input_scale")
    rng = np.random.default_rng(seed)
    weights = random_weights(config, rng, scale=weight_scale)
    x = rng.normal(size=(batch, timesteps, config.input_dim)) * input_scale
    m, mask_kind = _draw_mask(draw, caps, opts, rng, batch, timesteps, mask)
    rules = adapter.masked_output_rules(config, variant)
    masked_output = draw(st.sampled_from(rules), label="masked_output") if m is not None else rules[0]

    init = None
    want_init = "initial_state" in opts and (
        draw(st.booleans(), label="initial_state") if initial_state is None else initial_state)
    if want_init:
        init = [[(rng.normal(size=(batch, config.hidden_size)) * 0.5, rng.normal(size=(batch, config.units)) * 0.5)
                 for _ in range(config.num_directions)] for _ in range(config.num_layers)]
    return Case(config, weights, x, m, mask_kind, init, masked_output, seed, weight_scale, input_scale,
                regime=regime.name, last_output=adapter.last_output_reading(config, variant))


def _draw_mask(draw, caps, opts, rng, batch: int, timesteps: int, wanted: bool | None):
    """(mask, kind): right-padded or arbitrary per-sample masks, fully masked rows where the adapter allows."""
    use = ("mask" in opts or "lengths" in opts) and (draw(st.booleans(), label="mask") if wanted is None else wanted)
    if not use:
        return None, "none"
    kinds = ["right-padded"] + (["arbitrary"] if caps.arbitrary_masks and "mask" in opts else [])
    kind = draw(st.sampled_from(kinds), label="mask_kind")
    lo = 0 if caps.fully_masked_rows else 1
    if kind == "right-padded":
        lengths = np.array([draw(st.integers(lo, timesteps), label="length") for _ in range(batch)])
        return np.arange(timesteps)[None, :] < lengths[:, None], kind
    m = rng.random((batch, timesteps)) < draw(st.sampled_from([0.7, 0.3, 0.9]), label="mask_density")
    if not caps.fully_masked_rows:
        m[:, 0] |= ~m.any(axis=1)
    elif draw(st.booleans(), label="fully_masked_row"):
        m[rng.integers(batch)] = False
    return m, kind
