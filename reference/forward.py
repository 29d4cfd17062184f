"""The reference forward pass: the loop over time, directions and layers (spec/options.md).

The per-step math (GATE-1..GATE-4, PEEP-1, CLIP-1, IFG-1, PROJ-1) is :func:`reference.cell.lstm_step`;
this module runs it over a sequence and holds the rules around it: the initial state (STATE-1), masks
and lengths (MASK-1..MASK-3), go_backwards (DIR-1, DIR-2), the bidirectional merge (BIDI-1..BIDI-3)
and stacked layers (STACK-1). Overflow in a dtype gives inf/nan, never an error (NUM-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .cell import StepTrace, input_preactivations, lstm_step_trace, with_step_layout
from .config import Config
from .weights import LayerWeights, Weights

__all__ = ["LSTMResult", "DirectionTape", "lstm_forward", "run_direction", "run_layers", "prepare_call",
           "normalise_initial_state", "last_valid_index", "lengths_to_mask", "MASKED_OUTPUT_RULES",
           "LAST_OUTPUT_READINGS", "EMPTY_ROW_READINGS"]

MASKED_OUTPUT_RULES = ("carry", "zero")  # MASK-2
# Readings (spec/README.md "Readings"); the first is the default.
# MASK-2: the last output of a masked layer: the last processing step's output under the masked-output rule
# (this spec's convention), or the output of each row's last valid step whatever the rule (Keras docs:
# zero_output_for_mask "is only used when return_sequences is True").
LAST_OUTPUT_READINGS = ("last-step", "last-valid")
# MASK-3: the final state of a row with no valid step (ONNX sequence_lens 0; the ONNX text is silent):
# the initial state, as MASK-1 gives for every masked step (this spec's convention), or zeros.
EMPTY_ROW_READINGS = ("keep-initial", "zero-state")


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


@dataclass
class DirectionTape:
    """One direction's forward run as the backward pass reads it (reference/backward.py), processing order.

    ``x[B, T, d]`` and ``mask[B, T]`` as the direction read them, ``lw`` the weights it ran with (step
    layout), ``steps[t]`` each step's :class:`reference.cell.StepTrace`, ``y[B, T, H]`` its outputs and
    ``last[B, H]`` its last output under the MASK-2 reading (what the merge of the last outputs received).
    """

    backwards: bool
    x: np.ndarray
    mask: np.ndarray | None
    lw: LayerWeights
    steps: list[StepTrace] = field(default_factory=list)
    y: np.ndarray | None = None
    last: np.ndarray | None = None


def lengths_to_mask(lengths, timesteps: int) -> np.ndarray:
    """MASK-3: right-padded lengths -> boolean mask[B, T] (True = valid step)."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths: expected a 1-D integer array, got shape {lengths.shape} dtype {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > timesteps):
        raise ValueError(f"lengths={lengths.tolist()}: each length must be in [0, timesteps={timesteps}]")
    return np.arange(timesteps)[None, :] < lengths[:, None]


def run_direction(lw: LayerWeights, config: Config, x: np.ndarray, mask: np.ndarray | None,
                  h0: np.ndarray, c0: np.ndarray, masked_output: str,
                  empty_rows: str = "keep-initial",
                  tape: DirectionTape | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One direction over x[B, T, d] in the given (processing) order: :func:`lstm_step` per step.

    Returns (y[B, T, hidden] in processing order, h_T, c_T). Everything is computed in x.dtype. A
    ``tape`` (backward pass only) receives the weights and every step's trace; the results are the same.
    """
    B, T, _ = x.shape
    lw = with_step_layout(lw)
    if tape is not None:
        tape.lw = lw
    zx = input_preactivations(lw, x)  # GATE-1 input half, all steps in one matrix product: [B, T, 4, u]
    h, c = h0, c0
    prev_out = np.zeros_like(h0)  # MASK-2: before the first valid step the "previous output" is zeros
    ys = np.empty((B, T, h0.shape[1]), x.dtype)
    for t in range(T):
        step = lstm_step_trace(config, lw, zx[:, t], h, c)  # = lstm_step, keeping the intermediates
        h_new, c_new = step.h, step.c
        if tape is not None:
            tape.steps.append(step)
        if mask is None:
            h, c, out = h_new, c_new, h_new
        else:
            m = mask[:, t][:, None]
            h = np.where(m, h_new, h)  # MASK-1: a masked step keeps the state
            c = np.where(m, c_new, c)
            out = np.where(m, h_new, prev_out if masked_output == "carry" else np.zeros_like(h_new))
        ys[:, t] = out
        prev_out = out
    if mask is not None and empty_rows == "zero-state":
        empty = ~mask.any(axis=1)[:, None]  # MASK-3 'zero-state': a row with no valid step ends at zeros
        h, c = np.where(empty, np.zeros_like(h), h), np.where(empty, np.zeros_like(c), c)
    return ys, h, c


def last_valid_index(mask: np.ndarray) -> np.ndarray:
    """MASK-2 'last-valid': each row's last valid processing step (T - 1 for a row with none)."""
    T = mask.shape[1]
    return T - 1 - np.argmax(mask[:, ::-1], axis=1)  # index of the last True per row


def _last_valid(y: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """MASK-2 'last-valid': y (processing order) at each row's last valid step, zeros for a row with none."""
    if mask is None:
        return y[:, -1]
    out = y[np.arange(y.shape[0]), last_valid_index(mask)]
    return np.where(mask.any(axis=1)[:, None], out, np.zeros_like(out))


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


def normalise_initial_state(config: Config, initial_state, B: int, dt):
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


def prepare_call(config: Config, weights: Weights, x, mask, lengths, masked_output: str, last_output: str,
                 empty_rows: str, dtype: str | None) -> tuple[np.dtype, np.ndarray, np.ndarray | None]:
    """Validate one call's arguments: ``(dtype, x in that dtype, mask or None)`` (SHAPE-1, MASK-1..MASK-3)."""
    dt = np.dtype(dtype or config.dtype)
    if dt.name not in ("float16", "float32", "float64"):
        raise ValueError(f"dtype={dt.name!r}: allowed values are float16, float32, float64")
    if masked_output not in MASKED_OUTPUT_RULES:
        raise ValueError(f"masked_output={masked_output!r}: allowed values are {', '.join(MASKED_OUTPUT_RULES)}")
    if last_output not in LAST_OUTPUT_READINGS:
        raise ValueError(f"last_output={last_output!r}: allowed values are {', '.join(LAST_OUTPUT_READINGS)} (MASK-2)")
    if empty_rows not in EMPTY_ROW_READINGS:
        raise ValueError(f"empty_rows={empty_rows!r}: allowed values are {', '.join(EMPTY_ROW_READINGS)} (MASK-3)")
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
    return dt, x, mask


def lstm_forward(config: Config, weights: Weights, x, *, mask=None, lengths=None, initial_state=None,
                 masked_output: str = "carry", last_output: str = "last-step", empty_rows: str = "keep-initial",
                 dtype: str | None = None) -> LSTMResult:
    """Run the configured LSTM (stack) on batch-major ``x[B, T, input_dim]``.

    ``mask[B, T]`` (True = valid) or right-padded ``lengths[B]`` (MASK-1..MASK-3); ``masked_output``
    'carry' (Keras default) or 'zero' (Keras zero_output_for_mask, cuDNN, torch packed, ONNX) (MASK-2).
    ``last_output`` (a MASK-2 reading, :data:`LAST_OUTPUT_READINGS`) is how the last layer's last output
    (return_sequences=False) treats a masked last step; ``empty_rows`` (a MASK-3 reading,
    :data:`EMPTY_ROW_READINGS`) is the final state of a row with no valid step.
    ``dtype`` (default ``config.dtype``) is the precision of every operation.
    """
    dt, x, mask = prepare_call(config, weights, x, mask, lengths, masked_output, last_output, empty_rows, dtype)
    w = weights.astype(dt)
    states0 = normalise_initial_state(config, initial_state, x.shape[0], dt)
    return run_layers(config, w, x, mask, states0, masked_output, last_output, empty_rows)


def run_layers(config: Config, w: Weights, x: np.ndarray, mask: np.ndarray | None, states0, masked_output: str,
               last_output: str, empty_rows: str, tapes: list | None = None) -> LSTMResult:
    """The layers and directions of :func:`lstm_forward` on validated arguments (``w``, ``x`` in one dtype).

    ``tapes`` (backward pass only) receives ``tapes[l][d]``, a :class:`DirectionTape` per layer and direction.
    """
    result = LSTMResult(output=None)
    inp = x
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # NUM-2: overflow is reported, not raised
        for l in range(config.num_layers):
            hs, cs, ys, lasts = [], [], [], []
            if tapes is not None:
                tapes.append([])
            for d in range(config.num_directions):
                backwards = config.go_backwards or d == 1  # DIR-1, BIDI-1
                xi = inp[:, ::-1] if backwards else inp
                mi = None if mask is None else (mask[:, ::-1] if backwards else mask)
                tape = None if tapes is None else DirectionTape(backwards, xi, mi, w.layers[l][d])
                y, h, c = run_direction(w.layers[l][d], config, xi, mi, *states0[l][d], masked_output, empty_rows,
                                        tape)
                if last_output == "last-valid":
                    lasts.append(_last_valid(y, mi))  # MASK-2: in processing order, before any flip
                else:
                    lasts.append(y[:, -1])
                if tape is not None:
                    tape.y, tape.last = y, lasts[-1]
                    tapes[l].append(tape)
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
                last = _merge(config, lasts[0], lasts[1])
            else:
                merged_seq, last = ys[0], lasts[0]
            result.sequences.append(merged_seq)
            inp = merged_seq  # STACK-1: layer l+1 reads layer l's merged sequence
        result.output = merged_seq if config.return_sequences else last
    return result
