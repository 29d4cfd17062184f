"""The reference backward pass: back-propagation through time (spec/gradients.md, GRAD-1..GRAD-4).

The loop of ``forward.py`` read backwards. :func:`lstm_backward` runs the forward pass once, keeping every
step's intermediates (:class:`reference.forward.DirectionTape`, the same computation, the same numbers),
then walks layers, directions and steps in reverse: the merge (BIDI-2) and the last-output selection
(MASK-2, SHAPE-3) split the incoming gradient between the directions, :func:`run_direction_backward`
applies the masking rules (MASK-1..MASK-3) around :func:`reference.cell.lstm_step_backward`, and the
gradient of a layer's input becomes the gradient of the previous layer's merged sequence (STACK-1).

The loss is the scalar ``sum(output * g_out) + sum_l,d (sum(h_T[l][d] * g_h[l][d]) + sum(c_T[l][d] *
g_c[l][d]))``; every gradient is of that loss, in the dtype of the computation (float64 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cell import lstm_step_backward
from .config import Config
from .forward import DirectionTape, LSTMResult, last_valid_index, normalise_initial_state, prepare_call, run_layers
from .weights import LayerWeights, Weights

__all__ = ["Gradients", "lstm_backward", "run_direction_backward"]


@dataclass
class Gradients:
    """Gradients of the loss, each shaped as the quantity it belongs to.

    ``x`` (B, T, input_dim); ``h0[l][d]`` (B, H) and ``c0[l][d]`` (B, u) for the initial state of every
    layer and direction (zero state or given, STATE-1); ``weights`` canonical tensors (W, U, b, b2, P, W_hr
    as present; LAYOUT-1, so the layouts convert them like weights); ``forward`` the forward run they
    belong to (the same numbers as :func:`reference.lstm_forward`).
    """

    x: np.ndarray
    h0: list[list[np.ndarray]]
    c0: list[list[np.ndarray]]
    weights: Weights
    forward: LSTMResult


def run_direction_backward(config: Config, tape: DirectionTape, dy: np.ndarray, dh_T: np.ndarray,
                           dc_T: np.ndarray, masked_output: str,
                           empty_rows: str = "keep-initial") -> tuple[np.ndarray, np.ndarray, np.ndarray, LayerWeights]:
    """One direction backwards: ``dy[B, T, H]`` (processing order) and ``dL/dh_T``, ``dL/dc_T`` ->
    ``(dL/dx[B, T, d] in processing order, dL/dh_0, dL/dc_0, weight gradients)``.

    Masked steps (GRAD-2): the forward ``h_t = where(m, h_new, h_{t-1})`` sends the gradient of a masked
    row straight to ``h_{t-1}`` and none into the cell, so that row's step adds nothing to dx or the
    weights; the output rule ``'carry'`` (``y_t = y_{t-1}``) sends a masked step's output gradient on to
    the previous output, ``'zero'`` drops it (MASK-2); MASK-3 ``'zero-state'`` drops the final-state
    gradient of a row with no valid step.
    """
    x, mask, lw, steps = tape.x, tape.mask, tape.lw, tape.steps
    B, T, d = x.shape
    four, u, _ = lw.U.shape
    dh, dc = dh_T, dc_T
    if mask is not None and empty_rows == "zero-state":
        empty = ~mask.any(axis=1)[:, None]  # MASK-3: those rows' final state is a constant 0
        dh, dc = np.where(empty, np.zeros_like(dh), dh), np.where(empty, np.zeros_like(dc), dc)
    d_prev_out = np.zeros_like(dh)  # MASK-2 'carry': gradient reaching y_{t-1} through a masked y_t
    dz = np.empty((B, T, four, u), x.dtype)
    dh_cell = None if lw.W_hr is None else np.empty((B, T, lw.W_hr.shape[0]), x.dtype)  # dL/dh_t into each step
    for t in reversed(range(T)):
        dout = dy[:, t] + d_prev_out
        if mask is None:
            dh_new, dc_new, keep_h, keep_c = dh + dout, dc, None, None
        else:
            m = mask[:, t][:, None]
            zh, zc = np.zeros_like(dh), np.zeros_like(dc)
            dh_new, dc_new = np.where(m, dh + dout, zh), np.where(m, dc, zc)  # MASK-1: only valid rows enter the cell
            keep_h, keep_c = np.where(m, zh, dh), np.where(m, zc, dc)  # MASK-1: the state passed through
            d_prev_out = np.where(m, zh, dout) if masked_output == "carry" else zh  # MASK-2
        sg = lstm_step_backward(config, lw, steps[t], dh_new, dc_new, weight_gradients=False)
        dh, dc = sg.dh_prev, sg.dc_prev
        if keep_h is not None:
            dh, dc = dh + keep_h, dc + keep_c
        dz[:, t] = sg.dz
        if dh_cell is not None:
            dh_cell[:, t] = dh_new
    dz2 = dz.reshape(B * T, four * u)
    dx = (dz2 @ lw.W.reshape(four * u, d)).reshape(B, T, d)  # GATE-1 input half: zx = W x + b (+ b2)
    # The weight gradients are sums over steps (lstm_step_backward: dU = dz_t^T h_{t-1}, ...), each taken in one
    # product over all (batch, step) rows, as for W: masked rows have dz = 0 and add nothing (GRAD-2).
    def rows(name: str) -> np.ndarray:  # a trace field of every step as [B * T, size]
        return np.stack([getattr(s, name) for s in steps], axis=1).reshape(B * T, -1)
    grads = LayerWeights(W=(dz2.T @ x.reshape(B * T, d)).reshape(four, u, d),
                         U=(dz2.T @ rows("h_prev")).reshape(four, u, lw.U.shape[2]))
    if lw.P is not None:  # PEEP-1: rows i, o, f; z_i and z_f see c_{t-1}, z_o sees c_t
        dzr, c_prev = dz2.reshape(B * T, four, u), rows("c_prev")
        grads.P = np.stack([(dzr[:, 0] * c_prev).sum(0), (dzr[:, 3] * rows("c")).sum(0), (dzr[:, 1] * c_prev).sum(0)])
    if dh_cell is not None:  # PROJ-1: h_t = m_t W_hr^T
        grads.W_hr = dh_cell.reshape(B * T, -1).T @ rows("m")
    if lw.b is not None:
        grads.b = dz2.sum(axis=0).reshape(four, u)
    if lw.b2 is not None:
        grads.b2 = grads.b.copy()  # GATE-1: b and b2 are summed, so they share one gradient
    return dx, dh, dc, grads


def _merge_backward(config: Config, g, yf: np.ndarray, yb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BIDI-2 read backwards: the gradient of the merged value -> (forward's, backward's)."""
    mode = config.effective_merge_mode
    if mode == "concat":
        H = yf.shape[-1]
        return g[..., :H], g[..., H:]
    if mode == "sum":
        return g, g
    if mode == "mul":
        return g * yb, g * yf
    if mode == "ave":
        half = g / np.asarray(2, g.dtype)
        return half, half
    return g[0], g[1]  # 'none': one gradient per direction


def _per_state(config: Config, g, B: int, size: int, dt, name: str) -> list[list[np.ndarray]]:
    """``g_h`` / ``g_c`` as ``[layer][direction]`` arrays (zeros for None; a bare array for one layer and one
    direction), shape-checked."""
    L, D = config.num_layers, config.num_directions
    if g is None:
        return [[np.zeros((B, size), dt) for _ in range(D)] for _ in range(L)]
    if isinstance(g, np.ndarray) and L == 1 and D == 1:
        g = [[g]]
    if len(g) != L or any(len(row) != D for row in g):
        raise ValueError(f"{name}: expected [[array (B, {size})] * num_directions={D}] * num_layers={L}")
    out = [[np.asarray(a, dt) for a in row] for row in g]
    for l, row in enumerate(out):
        for d, a in enumerate(row):
            if a.shape != (B, size):
                raise ValueError(f"{name}[{l}][{d}]: shape {a.shape}, expected ({B}, {size})")
    return out


def _output_gradient(result: LSTMResult, g_out, dt):
    """``g_out`` shaped and typed as ``result.output`` (a pair for merge_mode 'none')."""
    if isinstance(result.output, tuple):
        if not isinstance(g_out, (tuple, list)) or len(g_out) != 2:
            raise ValueError("g_out: merge_mode 'none' returns (forward, backward): expected a pair of arrays")
        pair = tuple(np.asarray(g, dt) for g in g_out)
        for g, y in zip(pair, result.output):
            if g.shape != y.shape:
                raise ValueError(f"g_out: shape {g.shape}, expected the output's {y.shape}")
        return pair
    g = np.asarray(g_out, dt)
    if g.shape != result.output.shape:
        raise ValueError(f"g_out: shape {g.shape}, expected the output's {result.output.shape}")
    return g


def _add_last_gradient(dy: np.ndarray, g_last: np.ndarray, mask: np.ndarray | None, last_output: str) -> None:
    """SHAPE-3, MASK-2: the last output is y at the last processing step, or ('last-valid') at each row's
    last valid step (a row with none outputs a constant 0)."""
    if last_output == "last-valid" and mask is not None:
        rows = np.flatnonzero(mask.any(axis=1))
        dy[rows, last_valid_index(mask)[rows]] += g_last[rows]
    else:
        dy[:, -1] += g_last


def lstm_backward(config: Config, weights: Weights, x, *, g_out, g_h=None, g_c=None, mask=None, lengths=None,
                  initial_state=None, masked_output: str = "carry", last_output: str = "last-step",
                  empty_rows: str = "keep-initial", dtype: str | None = None) -> Gradients:
    """Gradients of ``sum(output * g_out) + sum(h_T * g_h) + sum(c_T * g_c)`` (GRAD-1).

    Arguments as :func:`reference.lstm_forward` (same validation, same readings), plus the loss weights:
    ``g_out`` shaped as the output (a pair with merge_mode 'none'); ``g_h[l][d]`` (B, H) and ``g_c[l][d]``
    (B, u) per layer and direction as ``LSTMResult.h`` / ``.c`` (None = 0; a bare array for one layer and one
    direction). Every operation runs in ``dtype`` (default ``config.dtype``); overflow gives inf/nan (NUM-2).
    """
    dt, x, mask = prepare_call(config, weights, x, mask, lengths, masked_output, last_output, empty_rows, dtype)
    B = x.shape[0]
    w = weights.astype(dt)
    states0 = normalise_initial_state(config, initial_state, B, dt)
    tapes: list[list[DirectionTape]] = []
    result = run_layers(config, w, x, mask, states0, masked_output, last_output, empty_rows, tapes)
    g_out = _output_gradient(result, g_out, dt)
    g_h = _per_state(config, g_h, B, config.hidden_size, dt, "g_h")
    g_c = _per_state(config, g_c, B, config.units, dt, "g_c")
    L, D = config.num_layers, config.num_directions
    d_seq = g_out if config.return_sequences else None  # gradient of the top layer's (merged) sequence
    d_last = None if config.return_sequences else g_out
    dh0 = [[None] * D for _ in range(L)]
    dc0 = [[None] * D for _ in range(L)]
    grads = Weights([[None] * D for _ in range(L)])
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # NUM-2
        for l in reversed(range(L)):
            tl = tapes[l]
            # returned time order: the backward direction of a bidirectional layer is flipped (BIDI-1)
            ys = [tp.y[:, ::-1] if d == 1 else tp.y for d, tp in enumerate(tl)]
            if D == 2:
                dys = ([None, None] if d_seq is None else list(_merge_backward(config, d_seq, ys[0], ys[1])))
                dlasts = ([None, None] if d_last is None
                          else list(_merge_backward(config, d_last, tl[0].last, tl[1].last)))
            else:
                dys, dlasts = [d_seq], [d_last]
            d_inp = np.zeros(tl[0].x.shape, dt)
            for d, tp in enumerate(tl):
                dy = np.zeros_like(tp.y) if dys[d] is None else np.array(dys[d][:, ::-1] if d == 1 else dys[d])
                if dlasts[d] is not None:
                    _add_last_gradient(dy, dlasts[d], tp.mask, last_output)
                dxi, dh0[l][d], dc0[l][d], grads.layers[l][d] = run_direction_backward(
                    config, tp, dy, g_h[l][d], g_c[l][d], masked_output, empty_rows)
                d_inp += dxi[:, ::-1] if tp.backwards else dxi  # DIR-1: back to the order the layer read
            d_seq, d_last = d_inp, None  # STACK-1: layer l's input is layer l-1's merged sequence
    for l, dirs in enumerate(grads.layers):  # the weights' own layout (step layout is a view), dtype dt
        grads.layers[l] = [LayerWeights(**{k: np.ascontiguousarray(v) for k, v in g.arrays().items()}) for g in dirs]
    return Gradients(x=d_seq, h0=dh0, c0=dc0, weights=grads, forward=result)

