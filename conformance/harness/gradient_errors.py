"""The error model for gradients (spec/gradients.md GRAD-1): NUM-1 (:mod:`.errors`) applied per gradient tensor.

One ratio per tensor, not one over a flattened vector: gradient tensors differ in scale by orders of magnitude
(a bias gradient sums over batch and time, an input gradient does not), and a floor set by the largest would
hide any error in the smallest. The oracles are equally valid roundings of the case, cotangents included
(:func:`gradient_oracle_inputs`); a case near a kink of an activation or a clip bound is inconclusive
(:func:`near_kink`): the derivative there depends on which side a rounding puts the argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import FLOOR_ULPS, K, NUDGED_ORACLES, Comparison, compare, flatten_outputs, nudge, nudge_inputs

__all__ = ["GradientComparison", "compare_gradients", "gradient_tensors", "gradient_oracle_inputs", "near_kink",
           "tensor_kind"]


@dataclass
class GradientComparison:
    """GRAD-1: one :class:`Comparison` per gradient tensor (and ``forward``: the outputs of the same call);
    the case's ratio is the worst conclusive tensor's. A case fails when a conclusive tensor fails; it is
    inconclusive when none fails and some tensor is (NUM-2, NUM-6) or the whole case is (near a kink)."""

    tensors: dict[str, Comparison]
    worst: str  # the tensor the case's ratio comes from
    passed: bool
    inconclusive: str = ""
    missing: tuple[str, ...] = ()  # tensors the reference has and the implementation did not return

    @property
    def ratio(self) -> float:
        return self.tensors[self.worst].ratio if self.worst in self.tensors else math.inf

    def to_dict(self) -> dict:
        """The worst tensor's numbers at the top level (as a forward check's), every tensor's below."""
        top = self.tensors[self.worst].to_dict() if self.worst in self.tensors else {"ratio": None}
        top.update(passed=self.passed, inconclusive=self.inconclusive, tensor=self.worst,
                   tensors={name: {k: v for k, v in c.to_dict().items()
                                   if k in ("ratio", "err_impl", "err_oracle", "floor", "ymax", "inconclusive")}
                            for name, c in self.tensors.items()})
        if self.missing:
            top["missing"] = list(self.missing)
        return top


def tensor_kind(name: str) -> str:
    """``W[0,1]`` -> ``W``: the gradient tensor's kind, without its layer and direction."""
    return name.split("[", 1)[0]


def gradient_tensors(x, h0, c0, weights, forward=None) -> dict[str, np.ndarray]:
    """GRAD-1: the gradient tensors by name (``x``, ``h0[l,d]``, ``c0[l,d]``, ``W[l,d]``, ``U``, ``b``, ``b2``,
    ``P``, ``W_hr``), plus ``forward``, the call's outputs flattened (:func:`flatten_outputs`) when given
    (a :class:`reference.LSTMResult` or an adapter's ``Output``)."""
    out: dict[str, np.ndarray] = {}
    if forward is not None:
        out["forward"] = flatten_outputs([forward.output, forward.h, forward.c])
    out["x"] = np.asarray(x)
    for name, per in (("h0", h0), ("c0", c0)):
        for l, dirs in enumerate(per):
            for d, a in enumerate(dirs):
                out[f"{name}[{l},{d}]"] = np.asarray(a)
    for l, dirs in enumerate(weights.layers):
        for d, lw in enumerate(dirs):
            for k, v in lw.arrays().items():
                out[f"{k}[{l},{d}]"] = np.asarray(v)
    return out


def compare_gradients(impl: dict, ref64: dict, oracles: list[dict], dtype: str, *, k: float = K,
                      floor_ulps: float = FLOOR_ULPS) -> GradientComparison:
    """GRAD-1: :func:`compare` per tensor of ``ref64`` (dicts from :func:`gradient_tensors`). The forward
    outputs' NUM-2 makes the whole case inconclusive (every gradient flows through them)."""
    tensors: dict[str, Comparison] = {}
    missing = tuple(n for n in ref64 if n not in impl)
    for name, ref in ref64.items():
        if name in missing:
            tensors[name] = Comparison(math.inf, math.nan, math.nan, math.inf, False, False, 0,
                                       note=f"the implementation returned no gradient {name}")
            continue
        tensors[name] = compare(impl[name], ref, [o[name] for o in oracles], dtype, k=k, floor_ulps=floor_ulps)
    conclusive = {n: c for n, c in tensors.items() if not c.inconclusive}
    failed = {n: c for n, c in conclusive.items() if not c.passed}
    fwd = tensors.get("forward")
    if fwd is not None and fwd.out_of_range:
        return GradientComparison(tensors, "forward", False, fwd.inconclusive, missing)
    if failed:
        worst = max(failed, key=lambda n: failed[n].ratio)
        return GradientComparison(tensors, worst, False, "", missing)
    unsure = [n for n, c in tensors.items() if c.inconclusive]
    if unsure:
        return GradientComparison(tensors, unsure[0], False, f"{tensors[unsure[0]].inconclusive} (gradient "
                                  f"{unsure[0]})", missing)
    worst = max(tensors, key=lambda n: tensors[n].ratio)
    return GradientComparison(tensors, worst, True, "", missing)


def near_kink(config, tape64, oracle_tapes, dtype: str, *, k: float = K, floor_ulps: float = FLOOR_ULPS) -> str:
    """GRAD-1 inconclusive near a kink: some activation input at a valid step of the float64 run lies within
    ``k * max(its largest oracle deviation, floor)`` of a point where its derivative is undefined: the gate
    inputs (before the clip) against their activation's kinks and the clip bounds +-c of GRAD-4, c_t against
    act's kinks and, under CLIP-1 'gate-inputs-and-cell', against +-c.
    ``tape64`` / ``oracle_tapes``: ``tapes[l][d]`` (reference.forward.DirectionTape) of the float64 run and
    of each oracle run. Returns the reason, or '' when no input is that close."""
    clip = config.cell_clip
    rec, act = config.recurrent_act.kinks, config.act.kinks
    bounds = () if clip is None else (-clip, clip)
    # the values before any clip (a clipped value sits exactly on the bound): z_i, z_f, z_o through ract and
    # z_c through act, each clipped; c_t through act, clipped under 'gate-inputs-and-cell' (GATE-4, CLIP-1)
    inputs = [("z", 0, (*rec, *bounds)), ("z", 1, (*rec, *bounds)), ("z", 2, (*act, *bounds)),
              ("z", 3, (*rec, *bounds))]
    cell_kinks = (*act, *(bounds if clip is not None and config.clip_reading == "gate-inputs-and-cell" else ()))
    inputs.append(("c", None, cell_kinks))
    if not any(kinks for *_, kinks in inputs):
        return ""
    for l, dirs in enumerate(tape64):
        for d, tape in enumerate(dirs):
            for t, step in enumerate(tape.steps):
                valid = slice(None) if tape.mask is None else tape.mask[:, t]
                for what, g, kinks in inputs:
                    if not kinks:
                        continue
                    def value(s):  # noqa: E306
                        v = getattr(s, what)
                        return np.asarray(v if g is None else v[g], np.float64)[valid]
                    z = value(step)
                    dev = np.zeros_like(z)
                    for ot in oracle_tapes:
                        with np.errstate(invalid="ignore"):
                            dev = np.fmax(dev, np.abs(value(ot[l][d].steps[t]) - z))
                    bar = k * np.maximum(dev, floor_ulps * float(np.finfo(np.dtype(dtype)).eps) * np.maximum(1, np.abs(z)))
                    for kink in kinks:
                        close = np.abs(z - kink) <= bar
                        if close.any():
                            name = "c_t" if g is None else f"z_{'ifco'[g]}"
                            rule = "GRAD-4" if kink in bounds else "GRAD-1"
                            return (f"{rule}: near a kink: {name} = {float(z[close][0]):.6g} at layer {l} direction {d} "
                                    f"step {t} lies within {float(bar[close][0]):.3g} of {kink:g} (K x its oracle "
                                    "deviation): the derivative there depends on rounding")
    return ""


def gradient_oracle_inputs(config, weights, x, *, g_out, g_h, g_c, initial_state=None, seed: int = 0,
                           nudged: int = NUDGED_ORACLES) -> list[tuple]:
    """GRAD-1: equally valid roundings of a gradient case, as ``(weights, x, initial_state, g_out, g_h, g_c)``:
    the case itself (float16/float32: the reference in the dtype is an oracle), and ``nudged`` more with
    inputs, weights, initial states and cotangents each nudged by an ulp of the dtype (:func:`nudge`, own
    seeds; float64: only these)."""
    dt = config.dtype
    out = [] if dt == "float64" else [(weights, x, initial_state, g_out, g_h, g_c)]
    for n in range(nudged):
        rng = np.random.default_rng([seed, 0x9bad, n + 1])
        w, xn, init = nudge_inputs(weights, x, initial_state, dt, rng)
        gh, gc = ([[nudge(a, dt, rng) for a in dirs] for dirs in g] for g in (g_h, g_c))
        go = tuple(nudge(a, dt, rng) for a in g_out) if isinstance(g_out, tuple) else nudge(g_out, dt, rng)
        out.append((w, xn, init, go, gh, gc))
    return out
