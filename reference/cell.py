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

from dataclasses import dataclass, replace

import numpy as np

from .config import Config
from .weights import LayerWeights

__all__ = ["input_preactivations", "lstm_step", "lstm_step_trace", "lstm_step_backward", "StepTrace", "StepGradients",
           "with_step_layout"]


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
    zx = (x @ lw.W.reshape(four * u, d).T).reshape(*x.shape[:-1], four, u)
    zx += bias  # in place: for a whole sequence zx is the largest array of the pass
    return zx


def with_step_layout(lw: LayerWeights) -> LayerWeights:
    """The same weights, U stored so that :func:`lstm_step`'s ``h @ U^T`` reads a C-contiguous (H, 4u) matrix.

    Memory layout only: U's values and shape (4, u, H) are unchanged. The loop calls it once per direction
    so each step is one BLAS gemm with no copy; BLAS rounds a transposed operand differently (OpenBLAS
    with batch 1 differs in the last bit), and this keeps the reference's results bit-stable.
    """
    four, u, H = lw.U.shape
    rec = np.ascontiguousarray(lw.U.reshape(four * u, H).T)  # (H, 4u), the Keras recurrent_kernel layout
    return replace(lw, U=rec.T.reshape(four, u, H))  # a view of rec, no copy


@dataclass
class StepTrace:
    """What one step computed, kept for the backward pass (:func:`lstm_step_backward`); [B, u] unless noted.

    ``z`` are the four activation inputs ``(z_i, z_f, z_c, z_o)`` with their peephole terms, before CLIP-1;
    ``a`` the same after the clip (what ract / act receive); ``cell_in`` the input of act in GATE-4 (c_t,
    clipped under 'gate-inputs-and-cell'), ``act_c = act(cell_in)``, ``m = o * act_c`` (h_t before PROJ-1).
    """

    h_prev: np.ndarray  # [B, H]
    c_prev: np.ndarray
    z: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    a: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    i: np.ndarray
    f: np.ndarray
    g: np.ndarray
    o: np.ndarray
    c: np.ndarray  # c_t
    cell_in: np.ndarray
    act_c: np.ndarray
    m: np.ndarray
    h: np.ndarray  # h_t [B, H]


def lstm_step(config: Config, lw: LayerWeights, zx_t: np.ndarray, h: np.ndarray,
              c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step for a batch: ``(h_{t-1}[B, H], c_{t-1}[B, u]) -> (h_t[B, H], c_t[B, u])``.

    ``zx_t[B, 4, u]`` is the step's input half of GATE-1, ``input_preactivations(lw, x_t)``. ``lw`` holds
    U (and P, W_hr when the config has them) in the dtype of the computation; ``config`` gives the
    activations, ``cell_clip`` and ``input_forget``. No masking here: a masked step is the loop's (MASK-1).
    """
    trace = lstm_step_trace(config, lw, zx_t, h, c)
    return trace.h, trace.c


def lstm_step_trace(config: Config, lw: LayerWeights, zx_t: np.ndarray, h: np.ndarray, c: np.ndarray) -> StepTrace:
    """:func:`lstm_step` with its intermediate values: the step's math, written once.

    The four gates live in one block ``z[B, 4, u]`` (rows i, f, c, o), so one product gives all of GATE-1
    and one call of ract covers i and f together; the ``z``, ``a`` and gate fields of the trace are views
    of those blocks.
    """
    B, four, u = zx_t.shape
    z = zx_t + (h @ lw.U.reshape(four * u, -1).T).reshape(B, four, u)  # GATE-1: + U_k h_{t-1}
    ract, act = config.recurrent_act, config.act
    clip = None if config.cell_clip is None else np.asarray(config.cell_clip, z.dtype)
    if lw.P is not None:  # PEEP-1: P rows are (i, o, f); i and f see c_{t-1}
        z[:, 0] += lw.P[0] * c
        z[:, 1] += lw.P[2] * c
    # CLIP-1: the activation input is the whole argument, peephole term included (o's below, after c_t)
    a_ifc = z[:, :3] if clip is None else np.clip(z[:, :3], -clip, clip)
    ai, af, ac = a_ifc[:, 0], a_ifc[:, 1], a_ifc[:, 2]
    if not config.input_forget:
        i_f = ract(a_ifc[:, :2])  # GATE-2: ract for i, f (and o); one call on the i, f block
        i, f = i_f[:, 0], i_f[:, 1]
    elif config.input_forget_reading == "f-from-i":
        i = ract(ai)
        f = 1 - i  # IFG-1 'f-from-i': f's own weights, bias and peephole are unused
    else:
        f = ract(af)
        i = 1 - f  # IFG-1 'i-from-f': i's own weights, bias and peephole are unused
    g = act(ac)  # GATE-2: act for g
    c_new = f * c + i * g  # GATE-3: stored unclipped under every CLIP-1 reading
    zo = z[:, 3]
    if lw.P is not None:
        zo += lw.P[1] * c_new  # PEEP-1: o sees c_t
    ao = zo if clip is None else np.clip(zo, -clip, clip)  # CLIP-1: after the peephole term, as for i and f
    o = ract(ao)
    cell_in = c_new
    if clip is not None and config.clip_reading == "gate-inputs-and-cell":
        cell_in = np.clip(c_new, -clip, clip)  # CLIP-1: c_t is the input of the activation h too
    act_c = act(cell_in)
    m = o * act_c  # GATE-4
    h_new = m @ lw.W_hr.T if lw.W_hr is not None else m  # PROJ-1
    return StepTrace(h, c, (z[:, 0], z[:, 1], z[:, 2], zo), (ai, af, ac, ao), i, f, g, o, c_new, cell_in, act_c,
                     m, h_new)


@dataclass
class StepGradients:
    """Gradients of the loss with respect to one step's inputs and the weights it reads (canonical shapes)."""

    dz: np.ndarray  # [B, 4, u]: w.r.t. the GATE-1 pre-activations, = w.r.t. zx_t (W x_t + b + b2)
    dh_prev: np.ndarray  # [B, H]
    dc_prev: np.ndarray  # [B, u]
    dU: np.ndarray | None  # (4, u, H); None when the caller sums it over steps (weight_gradients=False)
    dP: np.ndarray | None  # (3, u), rows i, o, f (PEEP-1)
    dW_hr: np.ndarray | None  # (p, u)


def _clip_gate(dy: np.ndarray, x: np.ndarray, clip) -> np.ndarray:
    """GRAD-4: d clip(x, -c, c)/dx = 1 for |x| < c, else 0 (0 at x = +-c: the minimum-norm sub-gradient)."""
    return dy if clip is None else np.where(np.abs(x) < clip, dy, np.zeros_like(dy))


def lstm_step_backward(config: Config, lw: LayerWeights, tr: StepTrace, dh: np.ndarray,
                       dc: np.ndarray, *, weight_gradients: bool = True) -> StepGradients:
    """Back-propagate one step: ``(dL/dh_t [B, H], dL/dc_t [B, u]) -> StepGradients`` (GRAD-1).

    ``tr`` is the step's :class:`StepTrace`; ``dc`` is the gradient reaching c_t from outside the step
    (the next step, the final state). The chain rule of :func:`lstm_step_trace` read backwards, with
    ``f'`` the registry derivatives (ACT-*) and ``clip'`` of GRAD-4::

        dm = dh W_hr (PROJ-1; dW_hr = dh^T m)     do = dm * act(cell_in)
        dc_t = dc + dm * o * act'(cell_in) [* clip'(c_t)]          dz_o = do * ract'(a_o) * clip'(z_o)
        dc_t += dz_o * P_o (PEEP-1)                                    di = dc_t * g   df = dc_t * c_{t-1}
        dg = dc_t * i     dc_{t-1} = dc_t * f    IFG-1: di -= df (f = 1 - i) or df -= di (i = 1 - f)
        dz_k = d(gate k) * f_k'(a_k) * clip'(z_k)                    dc_{t-1} += dz_i * P_i + dz_f * P_f
        dh_{t-1} = dz U       dU = dz^T h_{t-1}                      dP = sum_b (dz_i c_{t-1}, dz_o c_t, dz_f c_{t-1})

    With ``weight_gradients=False`` dU, dP and dW_hr are left None: the loop (reference/backward.py) sums
    them over all steps in one product each, as it does for W.
    """
    ract, act = config.recurrent_act, config.act
    clip = None if config.cell_clip is None else np.asarray(config.cell_clip, tr.c.dtype)
    zi, zf, zc, zo = tr.z
    ai, af, ac, ao = tr.a
    dW_hr = None
    if lw.W_hr is not None:  # PROJ-1: h_t = m W_hr^T
        dW_hr = dh.T @ tr.m if weight_gradients else None
        dh = dh @ lw.W_hr
    # f'(a) from the trace's f(a) where the registry writes f' through the output (ACT-*: sigmoid, tanh)
    do = dh * tr.act_c  # GATE-4
    dcell = dh * tr.o * act.derivative(tr.cell_in, tr.act_c)
    if clip is not None and config.clip_reading == "gate-inputs-and-cell":
        dcell = _clip_gate(dcell, tr.c, clip)  # CLIP-1 reading: h's input is clip(c_t)
    dc = dc + dcell
    dzo = _clip_gate(do * ract.derivative(ao, tr.o), zo, clip)
    if lw.P is not None:
        dc = dc + dzo * lw.P[1]  # PEEP-1: z_o sees c_t
    di, df, dg, dc_prev = dc * tr.g, dc * tr.c_prev, dc * tr.i, dc * tr.f  # GATE-3
    if not config.input_forget:
        dzi, dzf = ract.derivative(ai, tr.i) * di, ract.derivative(af, tr.f) * df
    elif config.input_forget_reading == "f-from-i":
        dzi, dzf = ract.derivative(ai, tr.i) * (di - df), np.zeros_like(dc)  # IFG-1: f = 1 - i
    else:
        dzi, dzf = np.zeros_like(dc), ract.derivative(af, tr.f) * (df - di)  # IFG-1: i = 1 - f
    dzi, dzf = _clip_gate(dzi, zi, clip), _clip_gate(dzf, zf, clip)
    dzc = _clip_gate(dg * act.derivative(ac, tr.g), zc, clip)
    dP = None
    if lw.P is not None:  # PEEP-1: rows i, o, f
        dc_prev = dc_prev + dzi * lw.P[0] + dzf * lw.P[2]
        if weight_gradients:
            dP = np.stack([(dzi * tr.c_prev).sum(0), (dzo * tr.c).sum(0), (dzf * tr.c_prev).sum(0)])
    dz = np.stack([dzi, dzf, dzc, dzo], axis=1)  # GATE-1, gate order i, f, c, o
    four, u, H = lw.U.shape
    dz2 = dz.reshape(-1, four * u)
    dh_prev = dz2 @ lw.U.reshape(four * u, H)
    dU = (dz2.T @ tr.h_prev).reshape(four, u, H) if weight_gradients else None
    return StepGradients(dz, dh_prev, dc_prev, dU, dP, dW_hr)
