"""The error model (spec/numerics.md NUM-1..NUM-4, DESIGN §3).

A fixed atol is wrong for LSTMs: error grows with timesteps, fan-in and saturation. Instead each case
is judged against what the *reference itself* loses in the dtype under test:

    err_impl   = max |y_impl - y_ref64|
    err_oracle = max |y_ref(dtype) - y_ref64|   (float64: see oracle_reference)
    floor      = FLOOR_ULPS * eps(dtype) * max(1, max |y_ref64|)
    ratio      = err_impl / max(err_oracle, floor)          pass when ratio <= K

K and FLOOR_ULPS come from ``lstm-conformance calibrate`` (numbers in spec/numerics.md), which recomputes
the ratio under other floors with :func:`ratio` from the numbers a :class:`Comparison` keeps.
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
    "flatten_outputs",
    "floor",
    "nudge",
    "nudge_inputs",
    "oracle_reference",
    "output_scale",
    "ratio",
]

#: NUM-4: calibrated acceptance ratio (see spec/numerics.md "Calibration results").
K = 64.0
#: NUM-1: the floor in units of eps(dtype) times the output scale.
FLOOR_ULPS = 8.0
#: NUM-2: values within this factor of the dtype's largest finite number count as out of its range.
RANGE_MARGIN = 2.0**16


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

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("err_impl", "err_oracle", "floor", "ratio", "ymax"):
            v = d[key]
            d[key] = None if v is None or not math.isfinite(v) else float(v)
        return d


def flatten_outputs(output, h=None, c=None) -> np.ndarray:
    """Concatenate an output (array or pair) and state lists into one float64 vector."""
    parts: list[np.ndarray] = []

    def add(obj):
        if obj is None:
            return
        if isinstance(obj, (list, tuple)):
            for o in obj:
                add(o)
        else:
            parts.append(np.asarray(obj, dtype=np.float64).ravel())

    add(output)
    add(h)
    add(c)
    return np.concatenate(parts) if parts else np.zeros(0)


def compare(impl: np.ndarray, ref64: np.ndarray, ref_dtype: np.ndarray, dtype: str, *, k: float = K,
            floor_ulps: float = FLOOR_ULPS) -> Comparison:
    """Judge ``impl`` (run in ``dtype``) against the float64 reference (NUM-1, NUM-2).

    All three are flat vectors of the same length (see :func:`flatten_outputs`).
    """
    impl, ref64, ref_dtype = (np.asarray(a, dtype=np.float64).ravel() for a in (impl, ref64, ref_dtype))
    if not (impl.shape == ref64.shape == ref_dtype.shape):
        return Comparison(math.inf, math.nan, math.nan, math.inf, False, False, 0,
                          note=f"size mismatch: impl {impl.size} values, reference {ref64.size}")
    # NUM-2: values the dtype cannot hold, or holds within a factor RANGE_MARGIN of its largest finite
    # number, are outside its range: a different but correct order of operations may overflow there
    # (measured: Keras-on-JAX float32 returning inf where the float32 reference reached 3e38).
    limit = float(np.finfo(np.dtype(dtype)).max) / RANGE_MARGIN
    finite = np.isfinite(ref_dtype) & np.isfinite(ref64) & (np.abs(ref64) <= limit) & (np.abs(ref_dtype) <= limit)
    out_of_range = not bool(finite.all())
    if not finite.any():
        return Comparison(0.0, 0.0, 0.0, 0.0, True, True, 0, note="reference not finite in this dtype anywhere")
    r64, rdt, imp = ref64[finite], ref_dtype[finite], impl[finite]
    ymax = float(np.max(np.abs(r64)))
    fl = floor(dtype, output_scale(ymax), floor_ulps)
    err_oracle = float(np.max(np.abs(rdt - r64)))
    diff = np.abs(imp - r64)
    compared = int(finite.sum())
    if not np.all(np.isfinite(imp)):
        # the implementation produced inf/nan where the reference in its own dtype is finite
        worst = int(np.flatnonzero(finite)[np.flatnonzero(~np.isfinite(imp))[0]])
        return Comparison(math.inf, err_oracle, fl, math.inf, False, out_of_range, compared, worst,
                          note="implementation not finite where the reference is", ymax=ymax)
    err_impl = float(diff.max())
    r = ratio(err_impl, err_oracle, dtype, output_scale(ymax), floor_ulps)
    worst = int(np.flatnonzero(finite)[int(diff.argmax())])
    return Comparison(err_impl, err_oracle, fl, r, r <= k, out_of_range, compared, worst, ymax=ymax)


def output_scale(ymax: float) -> float:
    """NUM-1: the scale the floor is measured at, ``max(1, max |y_ref64|)``: near-zero outputs still get
    a floor of a few ulps of 1 (where the gates' rounding lives), large outputs one of their own size."""
    return max(1.0, ymax)


def floor(dtype: str, scale: float, floor_ulps: float = FLOOR_ULPS) -> float:
    """NUM-1: ``floor_ulps`` ulps of ``dtype`` at ``scale``: below this, a difference is rounding noise."""
    return floor_ulps * float(np.finfo(np.dtype(dtype)).eps) * scale


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


def oracle_reference(config, weights, x, *, mask=None, initial_state=None, masked_output="carry",
                     seed: int = 0):
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
                            masked_output=masked_output, dtype=config.dtype)
    rng = np.random.default_rng([seed, 0x0ac1e])
    w, x, init = nudge_inputs(weights, x, initial_state, "float64", rng)
    return lstm_forward(config, w, x, mask=mask, initial_state=init, masked_output=masked_output, dtype="float64")
