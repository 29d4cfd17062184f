"""The reference forward pass (spec/equations.md, spec/options.md).

Written once, vectorised over the batch, looping over time. For one direction, per step t
(GATE-1..GATE-4; canonical gate order i, f, c, o):

    z_k = W_k x_t + U_k h_{t-1} + b_k (+ b2_k)            k in {i, f, c, o}          GATE-1
    i = ract(z_i [+ P_i * c_{t-1}])                                                    GATE-2, PEEP-1
    f = ract(z_f [+ P_f * c_{t-1}])        or f = 1 - i with input_forget              IFG-1
    g = act(z_c)
    c_t = f * c_{t-1} + i * g                                                          GATE-3
    o = ract(z_o [+ P_o * c_t])
    h_t = o * act(c_t)        then h_t = W_hr h_t with a projection                    GATE-4, PROJ-1

With ``cell_clip`` every gate activation input (the four pre-activations, peephole terms included)
is clipped to [-clip, clip]; c_t is not clipped before act(c_t) (CLIP-1, as ONNX Runtime does). A masked step keeps (h, c) and emits the previous output or zeros (MASK-1, MASK-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import Config
from .weights import LayerWeights, Weights

__all__ = ["LSTMResult", "lstm_forward", "run_direction", "lengths_to_mask", "MASKED_OUTPUT_RULES"]

MASKED_OUTPUT_RULES = ("carry", "zero")  # MASK-2


@dataclass
class LSTMResult:
    """Outputs in canonical layout.

    ``output``: the last layer's output as the config asks: (B, T, F) with return_sequences else (B, F);
    with merge_mode 'none' a tuple (forward, backward). ``h[l][d]`` (B, hidden) and ``c[l][d]`` (B, units)
    are the final states per layer and direction. ``sequences[l]`` is layer l's full merged output
    sequence (B, T, F) (what layer l+1 reads).
    """

    output: np.ndarray | tuple[np.ndarray, np.ndarray]
    h: list[list[np.ndarray]] = field(default_factory=list)
    c: list[list[np.ndarray]] = field(default_factory=list)
    sequences: list[np.ndarray] = field(default_factory=list)

    def states(self) -> list[np.ndarray]:
        """STATE-4: the last layer's final states in Keras return_state order [h_f, c_f, (h_b, c_b)]."""
        out = []
        for h, c in zip(self.h[-1], self.c[-1]):
            out += [h, c]
        return out


def lengths_to_mask(lengths, timesteps: int) -> np.ndarray:
    """MASK-3: right-padded lengths -> boolean mask[B, T] (True = valid step)."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths: expected a 1-D integer array, got shape {lengths.shape} dtype {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > timesteps):
        raise ValueError(f"lengths={lengths.tolist()}: each length must be in [0, timesteps={timesteps}]")
    return np.arange(timesteps)[None, :] < lengths[:, None]


def run_direction(lw: LayerWeights, config: Config, x: np.ndarray, mask: np.ndarray | None,
                  h0: np.ndarray, c0: np.ndarray, masked_output: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction over x[B, T, d] in the given (processing) order.

    Returns (y[B, T, hidden] in processing order, h_T, c_T). Everything is computed in x.dtype.
    """
    dt = x.dtype
    B, T, _ = x.shape
    ract, act = config.recurrent_act, config.act
    clip = None if config.cell_clip is None else np.asarray(config.cell_clip, dt)
    bias = np.zeros((4, config.units), dt)
    if lw.b is not None:
        bias = bias + lw.b
    if lw.b2 is not None:
        bias = bias + lw.b2  # GATE-1: torch/ONNX biases are summed
    # GATE-1: input projections for all steps at once, z_x[B, T, 4, u].
    u = config.units
    zx = (x @ lw.W.reshape(4 * u, -1).T).reshape(B, T, 4, u) + bias
    U_t = np.ascontiguousarray(lw.U.reshape(4 * u, -1).T)  # (h, 4u): one matmul per step for all gates
    h, c = h0, c0
    prev_out = np.zeros_like(h0)  # MASK-2: before the first valid step the "previous output" is zeros
    ys = np.empty((B, T, h0.shape[1]), dt)
    for t in range(T):
        z = zx[:, t] + (h @ U_t).reshape(B, 4, u)
        zi, zf, zc, zo = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
        if lw.P is not None:  # PEEP-1: P rows are (i, o, f); i and f see c_{t-1}
            zi = zi + lw.P[0] * c
            zf = zf + lw.P[2] * c
        if clip is not None:
            # CLIP-1: clip the full activation input, peephole term included (ONNX Runtime 1.32 CPU
            # clips after adding P*c, verified by tests/test_onnx_crosscheck.py); c_t itself is not
            # clipped before act(c_t).
            zi, zf, zc = np.clip(zi, -clip, clip), np.clip(zf, -clip, clip), np.clip(zc, -clip, clip)
        i = ract(zi)
        f = (1 - i) if config.input_forget else ract(zf)  # IFG-1
        g = act(zc)
        c_new = f * c + i * g  # GATE-3
        if lw.P is not None:
            zo = zo + lw.P[1] * c_new  # PEEP-1: o sees c_t
        if clip is not None:
            zo = np.clip(zo, -clip, clip)  # CLIP-1: after the peephole term, as for i and f
        o = ract(zo)
        h_new = o * act(c_new)  # GATE-4
        if lw.W_hr is not None:
            h_new = h_new @ lw.W_hr.T  # PROJ-1
        if mask is None:
            h, c, out = h_new, c_new, h_new
        else:
            m = mask[:, t][:, None]
            h = np.where(m, h_new, h)  # MASK-1: a masked step keeps the state
            c = np.where(m, c_new, c)
            out = np.where(m, h_new, prev_out if masked_output == "carry" else np.zeros_like(h_new))
        ys[:, t] = out
        prev_out = out
    return ys, h, c


def _merge(config: Config, yf: np.ndarray, yb: np.ndarray):
    mode = config.effective_merge_mode  # BIDI-2
    if mode == "concat":
        return np.concatenate([yf, yb], axis=-1)
    if mode == "sum":
        return yf + yb
    if mode == "mul":
        return yf * yb
    if mode == "ave":
        return (yf + yb) / np.asarray(2, yf.dtype)
    return (yf, yb)


def _normalise_initial_state(config: Config, initial_state, B: int, dt):
    """STATE-1: None (zeros), a pair (h0, c0) for a one-layer one-direction config, or
    ``[[(h0, c0) per direction] per layer]``."""
    H, u = config.hidden_size, config.units
    if initial_state is None:
        return [[(np.zeros((B, H), dt), np.zeros((B, u), dt)) for _ in range(config.num_directions)]
                for _ in range(config.num_layers)]
    if isinstance(initial_state, tuple) and len(initial_state) == 2 and isinstance(initial_state[0], np.ndarray):
        initial_state = [[initial_state]]
    if len(initial_state) != config.num_layers or any(len(d) != config.num_directions for d in initial_state):
        raise ValueError(f"initial_state: expected [[(h0, c0)] * num_directions={config.num_directions}] "
                         f"* num_layers={config.num_layers}")
    out = []
    for l, dirs in enumerate(initial_state):
        row = []
        for d, (h0, c0) in enumerate(dirs):
            h0, c0 = np.asarray(h0, dt), np.asarray(c0, dt)
            if h0.shape != (B, H) or c0.shape != (B, u):
                raise ValueError(f"initial_state l{l} d{d}: h0 {h0.shape} / c0 {c0.shape}, expected ({B}, {H}) / ({B}, {u})")
            row.append((h0, c0))
        out.append(row)
    return out


def lstm_forward(config: Config, weights: Weights, x, *, mask=None, lengths=None, initial_state=None,
                 masked_output: str = "carry", dtype: str | None = None) -> LSTMResult:
    """Run the configured LSTM (stack) on batch-major ``x[B, T, input_dim]``.

    ``mask[B, T]`` (True = valid) or right-padded ``lengths[B]`` (MASK-1..MASK-3); ``masked_output``
    'carry' (Keras default) or 'zero' (Keras zero_output_for_mask, cuDNN, torch packed, ONNX) (MASK-2).
    ``dtype`` (default ``config.dtype``) is the precision of every operation.
    """
    dt = np.dtype(dtype or config.dtype)
    if dt.name not in ("float16", "float32", "float64"):
        raise ValueError(f"dtype={dt.name!r}: allowed values are float16, float32, float64")
    if masked_output not in MASKED_OUTPUT_RULES:
        raise ValueError(f"masked_output={masked_output!r}: allowed values are {', '.join(MASKED_OUTPUT_RULES)}")
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[1] < 1 or x.shape[2] != config.input_dim:
        raise ValueError(f"x: shape {x.shape}, expected (batch>=1, timesteps>=1, input_dim={config.input_dim})")  # SHAPE-1
    x = x.astype(dt)
    B, T, _ = x.shape
    if mask is not None and lengths is not None:
        raise ValueError("mask and lengths: give at most one of them")
    if lengths is not None:
        mask = lengths_to_mask(lengths, T)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (B, T) or mask.dtype != np.bool_:
            raise ValueError(f"mask: shape {mask.shape} dtype {mask.dtype}, expected bool ({B}, {T})")
    weights.check(config)
    w = weights.astype(dt)
    states0 = _normalise_initial_state(config, initial_state, B, dt)
    result = LSTMResult(output=None)
    inp = x
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # NUM-2: overflow is reported, not raised
        for l in range(config.num_layers):
            hs, cs, ys = [], [], []
            for d in range(config.num_directions):
                backwards = config.go_backwards or d == 1  # DIR-1, BIDI-1
                xi = inp[:, ::-1] if backwards else inp
                mi = None if mask is None else (mask[:, ::-1] if backwards else mask)
                y, h, c = run_direction(w.layers[l][d], config, xi, mi, *states0[l][d], masked_output)
                if d == 1:
                    y = y[:, ::-1]  # BIDI-1: the backward sequence is returned in original time order
                # DIR-2: go_backwards (d == 0) keeps processing order, as Keras does.
                hs.append(h)
                cs.append(c)
                ys.append(y)
            result.h.append(hs)
            result.c.append(cs)
            if config.bidirectional:
                merged_seq = _merge(config, ys[0], ys[1])
                # SHAPE-3: without return_sequences each direction gives its last output in processing order
                last = _merge(config, ys[0][:, -1], ys[1][:, 0])
            else:
                merged_seq, last = ys[0], ys[0][:, -1]
            result.sequences.append(merged_seq)
            inp = merged_seq
        result.output = merged_seq if config.return_sequences else last
    return result
