"""Helpers for the gradient tests: the loss, central finite differences, and staying away from kinks.

The loss is the one ``lstm_backward`` differentiates, evaluated with ``lstm_forward`` alone:
``sum(output * g_out) + sum_l,d (sum(h[l][d] * g_h[l][d]) + sum(c[l][d] * g_c[l][d]))``. Finite differences
perturb one element at a time (central, step ``EPS``), so every element of every gradient is checked
against the forward pass, never against a second copy of the backward math.
"""

from __future__ import annotations

import numpy as np

from reference import Config, lstm_backward, lstm_forward
from reference.forward import normalise_initial_state, prepare_call, run_layers

EPS = 1e-6  # central-difference step: truncation ~EPS^2, rounding ~1e-16 / EPS, both far below 1e-6 relative
KINK_MARGIN = 1e-4  # an activation input closer than this to a kink could cross it under a perturbation
RTOL = 1e-6  # the finite-difference acceptance (relative to the tensor's largest gradient)


def loss_weights(config: Config, result, seed: int, states: bool = True):
    """Random (g_out, g_h, g_c) shaped like ``result`` (g_h = g_c = None when ``states`` is False)."""
    rng = np.random.default_rng(seed)
    out = result.output
    g_out = tuple(rng.normal(size=o.shape) for o in out) if isinstance(out, tuple) else rng.normal(size=out.shape)
    if not states:
        return g_out, None, None
    g_h = [[rng.normal(size=h.shape) for h in row] for row in result.h]
    g_c = [[rng.normal(size=c.shape) for c in row] for row in result.c]
    return g_out, g_h, g_c


def loss(config: Config, weights, x, g_out, g_h, g_c, **kw) -> float:
    r = lstm_forward(config, weights, x, **kw)
    outs = r.output if isinstance(r.output, tuple) else (r.output,)
    gs = g_out if isinstance(g_out, tuple) else (g_out,)
    total = sum(float(np.sum(o * g)) for o, g in zip(outs, gs))
    for rows, grows in ((r.h, g_h), (r.c, g_c)):
        if grows is not None:
            total += sum(float(np.sum(a * g)) for row, grow in zip(rows, grows) for a, g in zip(row, grow))
    return total


def central_difference(f, array: np.ndarray) -> np.ndarray:
    """d f / d array, element by element, perturbing ``array`` in place (restored afterwards)."""
    out = np.zeros_like(array, dtype=np.float64)
    for idx in np.ndindex(array.shape):
        keep = array[idx]
        array[idx] = keep + EPS
        up = f()
        array[idx] = keep - EPS
        down = f()
        array[idx] = keep
        out[idx] = (up - down) / (2 * EPS)
    return out


def kink_distance(config: Config, weights, x, **kw) -> float:
    """The smallest distance of any activation input (valid steps only) to a kink of its function, or to the
    clip bounds (GRAD-4): a finite difference is meaningful only when it is well above ``KINK_MARGIN``."""
    mask, lengths, init = kw.get("mask"), kw.get("lengths"), kw.get("initial_state")
    rules = {k: kw.get(k, d) for k, d in (("masked_output", "carry"), ("last_output", "last-step"),
                                          ("empty_rows", "keep-initial"))}
    dt, xx, mask = prepare_call(config, weights, x, mask, lengths, *rules.values(), None)
    states0 = normalise_initial_state(config, init, xx.shape[0], dt)
    tapes: list = []
    run_layers(config, weights.astype(dt), xx, mask, states0, *rules.values(), tapes)
    ract, act = config.recurrent_act, config.act
    clip = () if config.cell_clip is None else (-config.cell_clip, config.cell_clip)
    best = np.inf

    def near(values, points):
        nonlocal best
        for p in points:
            if values.size:
                best = min(best, float(np.min(np.abs(values - p))))

    for dirs in tapes:
        for tape in dirs:
            for t, st in enumerate(tape.steps):
                rows = slice(None) if tape.mask is None else tape.mask[:, t]
                zi, zf, zc, zo = (z[rows] for z in st.z)
                ai, af, ac, ao = (a[rows] for a in st.a)
                for a in (ai, af, ao):
                    near(a, ract.kinks)
                near(ac, act.kinks)
                near(st.cell_in[rows], act.kinks)
                for z in (zi, zf, zc, zo):
                    near(z, clip)
                if config.clip_reading == "gate-inputs-and-cell":
                    near(st.c[rows], clip)
    return best


def gradient_errors(config: Config, weights, x, *, seed: int = 0, states: bool = True, **kw) -> dict[str, float]:
    """Relative error of every gradient tensor against central differences: ``{name: max|fd - an| / scale}``,
    scale = the tensor's largest |gradient| (an all-zero gradient must be matched by an all-zero difference)."""
    x = np.array(x, dtype=np.float64)
    result = lstm_forward(config, weights, x, **kw)
    g_out, g_h, g_c = loss_weights(config, result, seed, states)
    grads = lstm_backward(config, weights, x, g_out=g_out, g_h=g_h, g_c=g_c, **kw)
    init = kw.get("initial_state")
    checks = {"x": (x, grads.x)}
    if init is not None:
        for l, row in enumerate(init):
            for d, (h0, c0) in enumerate(row):
                checks[f"h0[{l}][{d}]"] = (h0, grads.h0[l][d])
                checks[f"c0[{l}][{d}]"] = (c0, grads.c0[l][d])
    for l, dirs in enumerate(weights.layers):
        for d, lw in enumerate(dirs):
            for name, arr in lw.arrays().items():
                checks[f"{name}[{l}][{d}]"] = (arr, getattr(grads.weights.layers[l][d], name))
    errors = {}
    for name, (arr, analytic) in checks.items():
        assert analytic is not None and analytic.shape == arr.shape, f"{name}: gradient missing or misshaped"
        fd = central_difference(lambda: loss(config, weights, x, g_out, g_h, g_c, **kw), arr)
        scale = float(np.max(np.abs(analytic))) if analytic.size else 0.0
        diff = float(np.max(np.abs(fd - analytic))) if analytic.size else 0.0
        errors[name] = diff / scale if scale > 0 else (0.0 if diff == 0 else np.inf)
    return errors


def assert_gradients_match(config: Config, weights, x, what: str, **kw) -> float:
    """Every gradient of ``lstm_backward`` within ``RTOL`` of central differences; returns the worst error."""
    dist = kink_distance(config, weights, x, **{k: v for k, v in kw.items() if k not in ("seed", "states")})
    assert dist > KINK_MARGIN, f"{what}: an activation input lies {dist:.1e} from a kink; draw another case"
    errors = gradient_errors(config, weights, x, **kw)
    worst = max(errors, key=errors.get)
    assert errors[worst] < RTOL, (f"{what}: d loss / d {worst} off by {errors[worst]:.2e} relative "
                                  f"(all: { {k: f'{v:.1e}' for k, v in errors.items()} }) [{config}]")
    return errors[worst]
