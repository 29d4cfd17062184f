"""Diagnosis: which semantic variant (reference/variants.py) reproduces a failing implementation's output.

The reference is run under each variant that applies to the case (one that leaves the spec's output
unchanged does not apply); a variant *explains* the implementation when the implementation's output is
within the error model of the variant's (NUM-1: ``ratio <= K`` with the case's own equally valid
roundings as the bar). A reduced-precision variant is judged against its own rounding noise and must also
keep the implementation's effective mantissa bits to within ``BITS_BAND``. When no single variant explains
it, pairs among the closest candidates are tried. Variants whose outputs coincide on the case are one
explanation under several names (aliases). The diagnosis is *confident* when exactly one explanation fits.
Everything runs under a budget of CPU seconds (shared cores slow the wall clock, not the work), recorded
with the diagnosis beside the wall-clock time it took.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from reference.variants import Call, Variant, catalogue, run_variants

from ..harness import errors

__all__ = ["Diagnosis", "diagnose", "first_divergence", "BITS_BAND", "PAIR_CANDIDATES", "DEFAULT_BUDGET_S"]

#: a precision variant explains an implementation whose effective bits are within this many of its own
BITS_BAND = 2.5  # measured: a float64 Keras layer computing in float32 keeps 1.1 bits from the float32 reference
#: relative size of an equally valid rounding of a precision variant's operands (its unit roundoff)
_NOISE = {"compute:float16": 2.0**-11, "compute:float32": 2.0**-24, "operands:bfloat16": 2.0**-8,
          "operands:tf32": 2.0**-11}
#: pairs are tried among this many closest single variants
PAIR_CANDIDATES = 8
DEFAULT_BUDGET_S = 10.0
#: a long output sequence is screened on this many first steps to order the variants
SCREEN_STEPS = 8
#: ... and on this many batch rows
SCREEN_ROWS = 2


@dataclass
class Diagnosis:
    """``status``: explained (one explanation), ambiguous (several), unexplained (none: 'no known variant
    explains it'), not-diagnosed (the check kind or the case cannot be diagnosed; ``message`` says why)."""

    status: str
    variants: list[str] = field(default_factory=list)  # the explanation(s), best first; a pair as "a + b"
    aliases: list[list[str]] = field(default_factory=list)  # per explanation: variants with the same output
    rules: list[str] = field(default_factory=list)  # the rules the explanation departs from
    readings: list[str] = field(default_factory=list)  # what the explanation computes, one line each
    confident: bool = False
    divergence: dict = field(default_factory=dict)  # first diverging place against the spec
    spec_ratio: float | None = None
    closest: list[dict] = field(default_factory=list)  # the closest candidates: variant, ratio, bits
    tried: int = 0
    applicable: int = 0
    pairs: int = 0
    elapsed_s: float = 0.0  # wall clock
    cpu_s: float = 0.0  # what the budget counts: this process's CPU time
    budget_s: float = DEFAULT_BUDGET_S
    exhausted: bool = False
    message: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d

    def summary(self) -> str:
        """One line for a report card or a terminal."""
        if self.status in ("explained", "ambiguous"):
            names = " | ".join(self.variants)
            head = ("explained by " if self.confident else "ambiguous: ") + names
        elif self.status == "unexplained":
            head = "no known variant explains it"
        else:
            return f"not diagnosed: {self.message}"
        at = ", ".join(f"{k} {self.divergence[k]}" for k in ("part", "layer", "direction", "timestep", "batch", "unit")
                       if self.divergence.get(k) is not None)
        tail = f" ({self.tried} variants, {self.pairs} pairs, {self.elapsed_s:.2f}s"
        tail += ", budget exhausted)" if self.exhausted else ")"
        return head + (f"; first diverges at {at}" if at else "") + tail


def _flat(res, states: bool) -> np.ndarray:
    return errors.flatten_outputs([res.output, res.h, res.c] if states else [res.output])


def _call(case) -> Call:
    return Call(case.config, case.weights, case.x, case.mask, case.initial_state, case.masked_output,
                case.last_output, dtype="float64")


@dataclass
class _Tried:
    names: tuple[str, ...]
    rules: tuple[str, ...]
    readings: tuple[str, ...]
    flat: np.ndarray
    res: object
    ratio: float
    bits: float | None
    explains: bool
    bits_gap: float = 0.0  # a precision explanation: |effective bits lost by it - lost by the implementation|


def diagnose(case, out, *, view=None, budget_s: float = DEFAULT_BUDGET_S, variants: list[Variant] | None = None,
             oracles: list | None = None, spec=None, precision: bool = False) -> Diagnosis:
    """Name the variant(s) of the reference that reproduce ``out`` (an adapter Output or LSTMResult) on
    ``case`` (a harness Case). ``view`` maps a reference result to what was compared (a continuation check's
    second part); ``oracles`` are the case's equally valid roundings and ``spec`` its float64 reference
    (computed when not given). ``precision``: a NUM-5 failure (values within K, too few effective bits): only
    the precision variants are tried, and values that agree with the spec do not end the search."""
    t0, c0 = time.perf_counter(), time.process_time()  # the budget is CPU time: shared cores slow the wall clock
    screen = view is None
    view = view or (lambda r: r)
    variants = catalogue() if variants is None else variants
    if precision:
        variants = [v for v in variants if v.precision]
    call = _call(case)
    spec = view(call.run() if spec is None else spec)
    if screen:
        variants = _screened(call, out, variants)
    states = _states_comparable(out, spec)
    impl, spec_flat = _flat(out, states), _flat(spec, states)
    if impl.shape != spec_flat.shape or _shapes(out) != _shapes(spec):
        return Diagnosis("not-diagnosed", message=f"output sizes differ from the spec's ({impl.size} values, "
                         f"spec {spec_flat.size}): a shape rule, not a semantic variant", budget_s=budget_s)
    if oracles is None:
        oracles = errors.oracle_references(case.config, case.weights, case.x, mask=case.mask,
                                           initial_state=case.initial_state, masked_output=case.masked_output,
                                           seed=case.seed, last_output=case.last_output)
    oracle_flats = [_flat(view(o), states) for o in oracles]
    dtype = case.config.dtype
    base = errors.compare(impl, spec_flat, oracle_flats, dtype)
    diag = Diagnosis("unexplained", spec_ratio=_finite(base.ratio), budget_s=budget_s)
    if base.passed and not precision:
        diag.status, diag.message = "not-diagnosed", f"the output agrees with the spec (ratio {base.ratio:.3g} <= K)"
        return diag
    denom = max(base.err_oracle, base.floor) if math.isfinite(base.err_oracle) else base.floor
    scale = errors.output_scale(base.ymax)
    same = 1e-9 * scale  # a variant this close to the spec does not apply to the case
    tried: list[_Tried] = []

    def attempt(combo: tuple[Variant, ...]) -> _Tried | None:
        res = run_variants(combo, call)
        diag.tried += len(combo) == 1
        if res is None:
            return None
        res = view(res)
        try:
            flat = _flat(res, states)
        except (TypeError, ValueError):
            return None
        if flat.shape != spec_flat.shape or not np.isfinite(flat).all():
            return None
        if float(np.max(np.abs(flat - spec_flat), initial=0.0)) <= same:
            return None
        bars = [o - spec_flat + flat for o in oracle_flats]  # the case's rounding noise, around the variant
        precise = any(v.precision for v in combo)
        if precise:  # judged against its own rounding noise too: the variant on nudged inputs
            eps = max(_NOISE.get(v.name, 2.0**-53) for v in combo)
            nudged = run_variants(combo, _nudged(call, case.seed, eps))
            if nudged is not None:
                bars.append(_flat(view(nudged), states))
        cmp = errors.compare(impl, flat, bars, dtype)
        err_v = float(np.max(np.abs(flat - spec_flat)))
        bits_v = errors.effective_bits(err_v, scale, dtype)
        # NUM-6 does not apply here: a reduced-precision variant's own noise is large by design
        explains = cmp.ratio <= errors.K and not cmp.out_of_range
        gap = 0.0
        if precise:
            # the precision loss must be the implementation's: its effective bits against the variant without
            # the precision part equal the precision part's own (for a single variant: against the spec)
            exact = [t for t in tried if len(combo) == 2 and len(t.names) == 1 and t.names[0] in
                     {v.name for v in combo if not v.precision}]
            ref = exact[0].flat if exact else spec_flat
            lost = errors.effective_bits(float(np.max(np.abs(flat - ref), initial=0.0)), scale, dtype)
            seen = errors.effective_bits(float(np.max(np.abs(impl - ref), initial=0.0)), scale, dtype)
            gap = abs(seen - lost)
            explains = explains and gap <= BITS_BAND and (len(combo) == 1 or bool(exact))
        t = _Tried(tuple(v.name for v in combo), tuple(dict.fromkeys(v.rule for v in combo)),
                   tuple(v.reading for v in combo), flat, res, cmp.ratio, bits_v, explains, gap)
        tried.append(t)
        return t

    for v in variants:
        if time.process_time() - c0 > budget_s:
            diag.exhausted = True
            break
        attempt((v,))
    diag.applicable = len(tried)
    if not any(t.explains for t in tried) and not diag.exhausted:
        ranked = sorted(tried, key=lambda t: t.ratio)[:PAIR_CANDIDATES]
        by_name = {v.name: v for v in variants}
        # a precision variant composes with any semantic one: always a pair candidate
        ranked += [t for t in tried if by_name[t.names[0]].precision and all(t is not r for r in ranked)]
        for a, b in itertools.combinations(ranked, 2):
            if time.process_time() - c0 > budget_s:
                diag.exhausted = True
                break
            diag.pairs += 1
            attempt((by_name[a.names[0]], by_name[b.names[0]]))
    _conclude(diag, tried, denom, base.bits)
    diag.divergence = first_divergence(case, out, spec, denom, states,
                                       _explaining_result(tried) if diag.confident else None)
    diag.elapsed_s = time.perf_counter() - t0
    diag.cpu_s = round(time.process_time() - c0, 3)
    return diag


def _screened(call: Call, out, variants: list[Variant]) -> list[Variant]:
    """The variants ordered by how close they come on the first SCREEN_STEPS steps of a long case (the
    output sequence of a forward-reading layer depends only on the steps before it): within the budget the
    likely variants run on the whole case first. Variants that do not apply to the prefix keep their order
    after the others."""
    cfg, T = call.config, call.x.shape[1]
    y = out.output
    if (T <= 2 * SCREEN_STEPS or not cfg.return_sequences or cfg.bidirectional or cfg.go_backwards
            or isinstance(y, (tuple, list)) or np.ndim(y) != 3):
        return variants
    rows, steps = slice(0, SCREEN_ROWS), slice(0, SCREEN_STEPS)
    init = call.initial_state
    if init is not None:
        init = [[(h[rows], c[rows]) for h, c in dirs] for dirs in init]
    prefix = replace(call, x=call.x[rows, steps], mask=None if call.mask is None else call.mask[rows, steps],
                     initial_state=init)
    impl = np.asarray(y, np.float64)[rows, steps]
    spec = prefix.run().output
    with np.errstate(invalid="ignore"):
        spec_score = float(np.nanmax(np.abs(np.asarray(spec) - impl)))
    scores = []
    for n, v in enumerate(variants):
        res = run_variants((v,), prefix)
        rank, score = 1, 0.0  # does not change the prefix: the implementation may depart later (state reset)
        if res is not None and np.shape(res.output) == impl.shape and not np.allclose(res.output, spec, rtol=0,
                                                                                      atol=1e-12):
            with np.errstate(invalid="ignore"):
                score = float(np.nanmax(np.abs(np.asarray(res.output) - impl)))
            rank = 0 if score < spec_score else 2  # nearer the implementation than the spec is, or not
        scores.append((rank, score, n, v))
    return [v for *_, v in sorted(scores, key=lambda s: s[:3])]


def _conclude(diag: Diagnosis, tried: list[_Tried], denom: float, bits: float | None) -> None:
    explaining = sorted((t for t in tried if t.explains), key=lambda t: (len(t.names), t.ratio))
    groups: list[list[_Tried]] = []
    for t in explaining:  # variants with the same output on this case are one explanation
        for g in groups:
            if np.max(np.abs(g[0].flat - t.flat), initial=0.0) <= denom:
                g.append(t)
                break
        else:
            groups.append([t])
    diag.closest = [{"variant": " + ".join(t.names), "ratio": _finite(t.ratio), "bits": _finite(t.bits)}
                    for t in sorted(tried, key=lambda t: t.ratio)[:5]]
    if not groups:
        diag.message = "no known variant explains it"
        return
    precise = {v.name for v in catalogue() if v.precision}
    exact = [g for g in groups if not set(g[0].names) & precise]
    if exact and len(exact) < len(groups):  # a semantic explanation needs no precision loss on top of it
        groups = exact
    if len(groups) > 1 and len({tuple(sorted(set(g[0].names) - precise)) for g in groups}) == 1:
        # the explanations differ only in their precision: the coarser one's noise covers the finer one, the
        # effective bits tell them apart when one is clearly nearer the implementation's loss
        groups.sort(key=lambda g: g[0].bits_gap)
        near, next_ = (g[0].bits_gap for g in groups[:2])
        if near < 0.5 * next_:
            diag.message = "also within the error model, further in effective bits: " + ", ".join(
                " + ".join(g[0].names) for g in groups[1:])
            groups = groups[:1]
    diag.status = "explained" if len(groups) == 1 else "ambiguous"
    diag.confident = len(groups) == 1
    diag.variants = [" + ".join(g[0].names) for g in groups]
    diag.aliases = [[" + ".join(t.names) for t in g[1:]] for g in groups]
    diag.rules = list(dict.fromkeys(r for g in groups for r in g[0].rules))
    diag.readings = ["; ".join(g[0].readings) for g in groups]


def _explaining_result(tried: list[_Tried]):
    best = [t for t in tried if t.explains]
    return min(best, key=lambda t: t.ratio).res if best else None


def _shapes(res) -> list:
    outputs = res.output if isinstance(res.output, (tuple, list)) else [res.output]
    return [np.shape(o) for o in outputs]


def _finite(v) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def _states_comparable(out, spec) -> bool:
    try:
        return (len(out.h) == len(spec.h) and all(np.shape(a) == np.shape(b) for la, lb in zip(out.h, spec.h)
                                                  for a, b in zip(la, lb)))
    except TypeError:
        return False


def _nudged(call: Call, seed: int, eps: float) -> Call:
    """The call with inputs, weights and initial state moved by ``eps`` relative, random signs: an equally
    valid rounding at a precision variant's own resolution."""
    rng = np.random.default_rng([seed, 0xd1a6])

    def nudge(a):
        a = np.asarray(a, np.float64)
        return a * (1 + eps * rng.choice((-1.0, 1.0), size=a.shape))

    init = call.initial_state
    if init is not None:
        init = [[(nudge(h), nudge(c)) for h, c in dirs] for dirs in init]
    w = type(call.weights).from_flat({k: nudge(v) for k, v in call.weights.flat().items()})
    return replace(call, weights=w, x=nudge(call.x), initial_state=init)


def first_divergence(case, out, spec, denom: float, states: bool = True, explained=None) -> dict:
    """The first place (layer, direction, timestep, unit, output h/c) where ``out`` leaves the spec by more
    than K times the case's rounding bar. Timesteps count in the returned order (processing order for
    go_backwards, DIR-2); for a final state, the timestep is where the explaining variant's layer output
    first leaves the spec's, when there is one."""
    cfg = case.config
    bar = errors.K * denom
    o, s = np.asarray(out.output, np.float64) if not isinstance(out.output, (tuple, list)) else None, spec.output
    if o is not None and not isinstance(s, (tuple, list)) and o.shape == np.shape(s):
        d = np.abs(o - np.asarray(s, np.float64))
        bad = ~(d <= bar)
        if bad.any():
            where = {"part": "output", "layer": cfg.num_layers - 1}
            if o.ndim == 3:
                t = int(np.argmax(bad.any(axis=(0, 2))))
                b, unit = np.unravel_index(int(np.argmax(np.where(bad[:, t], d[:, t], -1))), d[:, t].shape)
                where.update(timestep=t, batch=int(b), unit=int(unit))
            else:
                b, unit = np.unravel_index(int(np.argmax(np.where(bad, d, -1))), d.shape)
                where.update(timestep=None, batch=int(b), unit=int(unit))
            where["direction"] = _direction(cfg, where["unit"])
            return where
    if not states:
        return {}
    for layer in range(len(spec.h)):
        for direction in range(len(spec.h[layer])):
            for part in ("h", "c"):
                a = np.asarray(getattr(out, part)[layer][direction], np.float64)
                d = np.abs(a - np.asarray(getattr(spec, part)[layer][direction], np.float64))
                if (~(d <= bar)).any():
                    b, unit = np.unravel_index(int(np.argmax(np.where(~(d <= bar), d, -1))), d.shape)
                    return {"part": part, "layer": layer, "direction": direction, "batch": int(b), "unit": int(unit),
                            "timestep": _sequence_divergence(explained, spec, layer, bar)}
    return {}


def _direction(cfg, unit: int) -> int | None:
    if cfg.bidirectional and cfg.effective_merge_mode == "concat":
        return int(unit >= cfg.hidden_size)
    return None if cfg.bidirectional else 0


def _sequence_divergence(explained, spec, layer: int, bar: float) -> int | None:
    try:
        a, b = np.asarray(explained.sequences[layer]), np.asarray(spec.sequences[layer])
    except (AttributeError, IndexError, TypeError):
        return None
    if a.shape != b.shape or a.ndim != 3:
        return None
    bad = ~(np.abs(a - b) <= bar)
    return int(np.argmax(bad.any(axis=(0, 2)))) if bad.any() else None
