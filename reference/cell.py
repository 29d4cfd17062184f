"""The LSTM cell: one time step (spec/equations.md GATE-*, spec/options.md PEEP-1, CLIP-1, IFG-1, PROJ-1).

The step holds the math; the loop over time, masking, direction, initial states and stacking are in
``forward.py`` (as Keras ``LSTMCell.call`` / ``RNN`` and onnx ``op_lstm`` ``_step`` / ``_run`` split them).
For one layer and direction at step t, canonical gate order i, f, c, o (rows 0..3 of W, U, b):

    z_k = W_k x_t + U_k h_{t-1} + b_k (+ b2_k)            k in {i, f, c, o}          GATE-1
    i = ract(z_i [+ P_i * c_{t-1}])                                                    GATE-2, PEEP-1
    f = ract(z_f [+ P_f * c_{t-1}])        or f = 1 - i with input_forget              IFG-1
    g = act(z_c)
    c_t = f * c_{t-1} + i * g                                                          GATE-3
    o = ract(z_o [+ P_o * c_t])
    h_t = o * act(c_t)        then h_t = W_hr h_t with a projection                    GATE-4, PROJ-1

With ``cell_clip`` every gate activation input (the four pre-activations, peephole terms included)
is clipped to [-clip, clip], and under the default reading ``gate-inputs-and-cell`` so is the input of
act(c_t) (the stored c_t is not clipped); ``gate-inputs`` leaves act(c_t)'s input alone (CLIP-1).
``input_forget_reading`` 'f-from-i' gives f = 1 - i, 'i-from-f' gives i = 1 - f (IFG-1).

GATE-1 is computed in two halves: the input half ``W x + b (+ b2)`` does not depend on the state, so
:func:`input_preactivations` computes it for a whole sequence in one matrix product; :func:`lstm_step`
adds the recurrent half ``U h_{t-1}`` and does the rest. Everything is computed in the arrays' dtype.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .config import Config
from .weights import LayerWeights

__all__ = ["input_preactivations", "lstm_step", "with_step_layout"]


def input_preactivations(lw: LayerWeights, x: np.ndarray) -> np.ndarray:
    """GATE-1, input half: ``W_k x + b_k (+ b2_k)`` for x[..., d] -> [..., 4, u], in x.dtype.

    Takes one step ``x_t[B, d]`` or a whole sequence ``x[B, T, d]`` (one matrix product for all steps).
    """
    four, u, d = lw.W.shape
    bias = np.zeros((four, u), x.dtype)
    if lw.b is not None:
        bias = bias + lw.b
    if lw.b2 is not None:
        bias = bias + lw.b2  # GATE-1: torch/ONNX have two biases, summed
    return (x @ lw.W.reshape(four * u, d).T).reshape(*x.shape[:-1], four, u) + bias


def with_step_layout(lw: LayerWeights) -> LayerWeights:
    """The same weights, U stored so that :func:`lstm_step`'s ``h @ U^T`` reads a C-contiguous (H, 4u) matrix.

    Memory layout only: U's values and shape (4, u, H) are unchanged. The loop calls it once per direction
    so each step is one BLAS gemm with no copy; BLAS rounds a transposed operand differently (OpenBLAS
    with batch 1 differs in the last bit), and this keeps the reference's results bit-stable.
    """
    four, u, H = lw.U.shape
    rec = np.ascontiguousarray(lw.U.reshape(four * u, H).T)  # (H, 4u), the Keras recurrent_kernel layout
    return replace(lw, U=rec.T.reshape(four, u, H))  # a view of rec, no copy


def lstm_step(config: Config, lw: LayerWeights, zx_t: np.ndarray, h: np.ndarray,
              c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step for a batch: ``(h_{t-1}[B, H], c_{t-1}[B, u]) -> (h_t[B, H], c_t[B, u])``.

    ``zx_t[B, 4, u]`` is the step's input half of GATE-1, ``input_preactivations(lw, x_t)``. ``lw`` holds
    U (and P, W_hr when the config has them) in the dtype of the computation; ``config`` gives the
    activations, ``cell_clip`` and ``input_forget``. No masking here: a masked step is the loop's (MASK-1).
    """
    B, four, u = zx_t.shape
    z = zx_t + (h @ lw.U.reshape(four * u, -1).T).reshape(B, four, u)  # GATE-1: + U_k h_{t-1}
    zi, zf, zc, zo = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
    ract, act = config.recurrent_act, config.act
    clip = None if config.cell_clip is None else np.asarray(config.cell_clip, z.dtype)
    if lw.P is not None:  # PEEP-1: P rows are (i, o, f); i and f see c_{t-1}
        zi = zi + lw.P[0] * c
        zf = zf + lw.P[2] * c
    if clip is not None:
        # CLIP-1: the activation input is the whole argument, peephole term included
        zi, zf, zc = np.clip(zi, -clip, clip), np.clip(zf, -clip, clip), np.clip(zc, -clip, clip)
    if not config.input_forget:
        i, f = ract(zi), ract(zf)  # GATE-2: ract for i, f, o; act for g
    elif config.input_forget_reading == "f-from-i":
        i = ract(zi)
        f = 1 - i  # IFG-1 'f-from-i': f's own weights, bias and peephole are unused
    else:
        f = ract(zf)
        i = 1 - f  # IFG-1 'i-from-f': i's own weights, bias and peephole are unused
    g = act(zc)
    c_new = f * c + i * g  # GATE-3: stored unclipped under every CLIP-1 reading
    if lw.P is not None:
        zo = zo + lw.P[1] * c_new  # PEEP-1: o sees c_t
    if clip is not None:
        zo = np.clip(zo, -clip, clip)  # CLIP-1: after the peephole term, as for i and f
    o = ract(zo)
    cell_in = c_new
    if clip is not None and config.clip_reading == "gate-inputs-and-cell":
        cell_in = np.clip(c_new, -clip, clip)  # CLIP-1: c_t is the input of the activation h too
    h_new = o * act(cell_in)  # GATE-4
    if lw.W_hr is not None:
        h_new = h_new @ lw.W_hr.T  # PROJ-1
    return h_new, c_new
