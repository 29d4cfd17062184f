"""The error model (spec/numerics.md NUM-1..NUM-4, DESIGN §3).

A fixed atol is wrong for LSTMs: error grows with timesteps, fan-in and saturation. Instead each case
is judged against what the *reference itself* loses in the dtype under test:

    err_impl   = max |y_impl - y_ref64|
    err_oracle = max |y_ref(dtype) - y_ref64|   (float64: see oracle_reference)
    floor      = FLOOR_ULPS * eps(dtype) * max(1, max |y_ref64|)
    ratio      = err_impl / max(err_oracle, floor)          pass when ratio <= K

K and FLOOR_ULPS come from ``lstm-conformance calibrate`` (numbers in spec/numerics.md), which recomputes
the ratio under other floors with :func:`ratio` from the numbers a :class:`Comparison` keeps.

Error model v2: ``err_oracle`` is the maximum over several equally valid roundings of the case (the
reference in the dtype, plus NUDGED_ORACLES references on inputs nudged by an ulp), so one lucky rounding
cannot make the bar too low. A case none of whose numbers can be trusted is *inconclusive* (never pass,
never fail): one that leaves the dtype's safe range anywhere (NUM-2), or whose equally valid roundings
already disagree in more than the top third of the dtype's mantissa (ill-conditioned, NUM-6). Each value
check also records the implementation's effective mantissa bits (NUM-5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = [
    "FLOOR_ULPS",
    "Comparison",
    "K",
    "compare",
    "effective_bits",
    "NUDGED_ORACLES",
    "flatten_outputs",
    "iter_arrays",
    "floor",
    "nudge",
    "nudge_inputs",
    "oracle_reference",
    "oracle_references",
    "output_scale",
    "floor_scale",
    "ratio",
]

#: NUM-4: calibrated acceptance ratio (see spec/numerics.md "Calibration results").
K = 64.0
#: NUM-1: the floor in units of eps(dtype) times the output scale.
FLOOR_ULPS = 8.0
#: NUM-2: values within this factor of the dtype's largest finite number count as out of its range.
RANGE_MARGIN = 2.0**16
#: NUM-1 v2: nudged references besides the reference run in the dtype (float64: only these)
NUDGED_ORACLES = 2
#: NUM-6: a case whose equally valid roundings keep fewer than this share of the dtype's mantissa bits
#: (relative to the output scale) is ill-conditioned: inconclusive.
CONDITIONING_SHARE = 1 / 3


@dataclass
class Comparison:
    err_impl: float
    err_oracle: float
    floor: float
    ratio: float
    passed: bool
    out_of_range: bool  # NUM-2: the reference in the dtype under test overflowed somewhere
    compared: int  # number of values compared (finite in the dtype reference)
    worst_index: int | None = None
    note: str = ""
    ymax: float = 0.0  # max |y_ref64| over the compared values; the floor's scale is output_scale(ymax)
    inconclusive: str = ""  # why the case proves nothing either way (NUM-2 range, NUM-6 conditioning)
    bits: float | None = None  # NUM-5: the implementation's effective mantissa bits at the output scale
    oracle_bits: float | None = None  # the same for the worst equally valid rounding (the reference's own)

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("err_impl", "err_oracle", "floor", "ratio", "ymax", "bits", "oracle_bits"):
            v = d[key]
            d[key] = None if v is None or not math.isfinite(v) else float(v)
        return d


def iter_arrays(obj):
    """The arrays of a nested output (an array, a pair, lists of states), in order."""
    if obj is None:
        return
    if isinstance(obj, (list, tuple)):
        for o in obj:
            yield from iter_arrays(o)
    else:
        yield obj


def flatten_outputs(output, h=None, c=None) -> np.ndarray:
    """Concatenate an output (array or pair) and state lists into one float64 vector."""
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in iter_arrays([output, h, c])]
    return np.concatenate(parts) if parts else np.zeros(0)


def _mantissa_bits(dtype: str) -> int:
    return int(np.finfo(np.dtype(dtype)).nmant) + 1


def effective_bits(err: float, scale: float, dtype: str) -> float:
    """NUM-5: mantissa bits that ``err`` leaves correct at ``scale``, capped at the dtype's own (exact = cap)."""
    cap = float(_mantissa_bits(dtype))
    if err <= 0 or not math.isfinite(err):
        return cap if err == 0 else 0.0
    rel = err / scale
    if rel <= 0:  # a subnormal error at a large scale underflows: as good as exact (gradients reach 1e-320)
        return cap
    return float(min(cap, max(0.0, -math.log2(rel))))


def compare(impl: np.ndarray, ref64: np.ndarray, ref_dtype, dtype: str, *, k: float = K,
            floor_ulps: float = FLOOR_ULPS, peak: float | None = None) -> Comparison:
    """Judge ``impl`` (run in ``dtype``) against the float64 reference (NUM-1, NUM-2, NUM-5, NUM-6).

    ``impl`` and ``ref64`` are flat vectors of the same length (see :func:`flatten_outputs`); ``ref_dtype``
    is one such vector or a list of them (equally valid roundings of the case: the oracles); ``peak`` the
    largest magnitude anywhere in the float64 trajectory (pre-activations, cell states), when known.
    """
    impl, ref64 = (np.asarray(a, dtype=np.float64).ravel() for a in (impl, ref64))
    oracles = [np.asarray(o, dtype=np.float64).ravel() for o in (ref_dtype if isinstance(ref_dtype, list) else [ref_dtype])]
    if not all(a.shape == ref64.shape for a in [impl, *oracles]):
        return Comparison(math.inf, math.nan, math.nan, math.inf, False, False, 0,
                          note=f"size mismatch: impl {impl.size} values, reference {ref64.size}")
    # NUM-2: values the dtype cannot hold, or holds within a factor RANGE_MARGIN of its largest finite
    # number, are outside its range: a different but correct order of operations may overflow there
    # (measured: Keras-on-JAX float32 returning inf where the float32 reference reached 3e38).
    limit = float(np.finfo(np.dtype(dtype)).max) / RANGE_MARGIN
    with np.errstate(invalid="ignore"):
        inside = np.isfinite(ref64) & (np.abs(ref64) <= limit)
        for o in oracles:
            inside &= np.isfinite(o) & (np.abs(o) <= limit)
    if not inside.all() or (peak is not None and not peak <= limit):
        values = [peak] if peak is not None else []
        values += [float(np.max(np.abs(a[~inside]))) for a in (ref64, *oracles) if (~inside).any()]
        top = "a non-finite value" if not all(map(math.isfinite, values)) else f"|value| {max(values):.3g}"
        # the numbers over the in-range positions are kept for the record; the verdict is inconclusive
        cmp = _measure(impl[inside], ref64[inside], [o[inside] for o in oracles], dtype, k, floor_ulps)
        cmp.out_of_range, cmp.passed = True, False
        cmp.inconclusive = (f"NUM-2: the case leaves {dtype}'s safe range ({top}, limit {limit:.3g}) in the float64 "
                            "reference or an equally valid rounding of it")
        return cmp
    cmp = _measure(impl, ref64, oracles, dtype, k, floor_ulps)
    if cmp.oracle_bits is not None and cmp.oracle_bits < CONDITIONING_SHARE * _mantissa_bits(dtype):
        cmp.passed = False
        cmp.inconclusive = (f"NUM-6: ill-conditioned: equally valid roundings of the case differ by {cmp.err_oracle:.3g} "
                            f"at output scale {output_scale(cmp.ymax):.3g} (only {cmp.oracle_bits:.1f} of "
                            f"{_mantissa_bits(dtype)} mantissa bits agree)")
    return cmp


def _measure(impl, ref64, oracles, dtype: str, k: float, floor_ulps: float) -> Comparison:
    """NUM-1 over values that are all in range: errors, floor, ratio, effective bits."""
    ymax = float(np.max(np.abs(ref64))) if ref64.size else 0.0
    scale = output_scale(ymax)
    fl = floor(dtype, floor_scale(ymax), floor_ulps)
    err_oracle = max((float(np.max(np.abs(o - ref64))) for o in oracles), default=0.0) if ref64.size else 0.0
    oracle_bits = effective_bits(err_oracle, scale, dtype)
    compared = int(ref64.size)
    if not np.all(np.isfinite(impl)):
        # the implementation produced inf/nan where every reference is finite and in range
        worst = int(np.flatnonzero(~np.isfinite(impl))[0])
        return Comparison(math.inf, err_oracle, fl, math.inf, False, False, compared, worst,
                          note="implementation not finite where the reference is", ymax=ymax, bits=0.0,
                          oracle_bits=oracle_bits)
    diff = np.abs(impl - ref64)
    err_impl = float(diff.max()) if diff.size else 0.0
    r = ratio(err_impl, err_oracle, dtype, floor_scale(ymax), floor_ulps)
    worst = int(diff.argmax()) if diff.size else None
    return Comparison(err_impl, err_oracle, fl, r, r <= k, False, compared, worst, ymax=ymax,
                      bits=effective_bits(err_impl, scale, dtype), oracle_bits=oracle_bits)


def floor_scale(ymax: float) -> float:
    """NUM-1 v2: the floor is measured at the output's own scale ``max |y_ref64|`` (not clamped at 1: with
    outputs of 1e-4 a floor at scale 1 let a swapped gate moving them by 10 % pass; calibration: correct
    backends' worst ratio 7.95 this way, float32 slips caught 97.6 % instead of 85.7 %). The smallest normal
    number keeps an all-zero output from dividing by zero."""
    return max(ymax, float(np.finfo(np.float64).tiny))


def output_scale(ymax: float) -> float:
    """NUM-1: the scale the floor is measured at, ``max(1, max |y_ref64|)``: near-zero outputs still get
    a floor of a few ulps of 1 (where the gates' rounding lives), large outputs one of their own size."""
    return max(1.0, ymax)


def floor(dtype: str, scale: float, floor_ulps: float = FLOOR_ULPS) -> float:
    """NUM-1: ``floor_ulps`` ulps of ``dtype`` at ``scale``: below this, a difference is rounding noise. Never
    below ``floor_ulps`` smallest normal numbers of the dtype: a value under the normal range (a subnormal)
    may be flushed to zero (TensorFlow and XLA set flush-to-zero on CPU), losing up to one smallest normal."""
    info = np.finfo(np.dtype(dtype))
    return floor_ulps * max(float(info.eps) * scale, float(info.tiny))


def ratio(err_impl: float, err_oracle: float, dtype: str, scale: float, floor_ulps: float = FLOOR_ULPS) -> float:
    """NUM-1: ``err_impl / max(err_oracle, floor)``; pass when <= K. Calibration calls it with candidate
    floors and scales (``scale`` is :func:`output_scale` of ``max |y_ref64|`` in the error model)."""
    denom = max(err_oracle, floor(dtype, scale, floor_ulps))
    return err_impl / denom if denom > 0 else (0.0 if err_impl == 0 else math.inf)


def nudge(a, dtype: str, rng: np.random.Generator) -> np.ndarray:
    """``a`` rounded to ``dtype`` and moved by a relative ``eps(dtype)`` with a random sign per value: one
    or two ulps of ``dtype``, an equally valid rounding of the same case (zero stays zero)."""
    a = np.asarray(a, dtype)
    eps = np.finfo(np.dtype(dtype)).eps
    return (a * (1 + eps * rng.choice((-1.0, 1.0), size=np.shape(a)))).astype(dtype, copy=False)


def nudge_inputs(weights, x, initial_state, dtype: str, rng: np.random.Generator):
    """(weights, x, initial_state) of a case, each value :func:`nudge`-d in ``dtype``: another rounding of
    the same case (the float64 oracle, and calibration's spread of roundings)."""
    from reference import Weights

    w = Weights.from_flat({k: nudge(v, dtype, rng) for k, v in weights.flat().items()})
    init = None if initial_state is None else [[(nudge(h, dtype, rng), nudge(c, dtype, rng)) for h, c in dirs]
                                               for dirs in initial_state]
    return w, nudge(x, dtype, rng), init


def oracle_references(config, weights, x, *, mask=None, initial_state=None, masked_output="carry",
                      seed: int = 0, nudged: int = NUDGED_ORACLES, last_output: str = "last-step") -> list:
    """NUM-1 v2: equally valid roundings of the case -- :func:`oracle_reference` and ``nudged`` more
    references in the dtype on inputs, weights and initial state each nudged by an ulp (own seeds)."""
    from reference import lstm_forward

    out = [oracle_reference(config, weights, x, mask=mask, initial_state=initial_state, masked_output=masked_output,
                            seed=seed, last_output=last_output)]
    for n in range(1 if config.dtype == "float64" else 0, nudged):
        rng = np.random.default_rng([seed, 0x0ac1e, n + 1])
        w, xn, init = nudge_inputs(weights, x, initial_state, config.dtype, rng)
        with np.errstate(all="ignore"):
            out.append(lstm_forward(config, w, xn, mask=mask, initial_state=init, masked_output=masked_output,
                                    last_output=last_output, dtype=config.dtype))
    return out


def oracle_reference(config, weights, x, *, mask=None, initial_state=None, masked_output="carry",
                     seed: int = 0, last_output: str = "last-step"):
    """NUM-1: the reference as the dtype under test sees the case, for ``err_oracle``.

    float16/float32: the reference run in that dtype (inputs and weights rounded, every operation in it).
    float64: nothing is lower-precision, so ``|ref(float64) - ref64|`` would be 0 and only the floor
    would judge -- too tight where the recurrence amplifies rounding (long, saturated or projected
    sequences move by far more than a few ulps under a 1-ulp input change). The oracle is then the
    reference on inputs, weights and initial state each moved by about one ulp with a random sign
    (:func:`nudge_inputs`): what float64 rounding alone can change in this case.
    """
    from reference import lstm_forward

    if config.dtype != "float64":
        return lstm_forward(config, weights, x, mask=mask, initial_state=initial_state,
                            masked_output=masked_output, last_output=last_output, dtype=config.dtype)
    rng = np.random.default_rng([seed, 0x0ac1e])
    w, x, init = nudge_inputs(weights, x, initial_state, "float64", rng)
    return lstm_forward(config, w, x, mask=mask, initial_state=init, masked_output=masked_output,
                        last_output=last_output, dtype="float64")
