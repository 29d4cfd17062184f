"""Other ways to construct the same Keras LSTM layer, as adapter variants (each has had its own bugs).

``rnn-cell``: ``RNN(LSTMCell(...))`` instead of ``LSTM(...)``, in Keras 3 and tf-keras. The generic RNN loop
steps the cell's ``call``: never the fused LSTM kernels (cuDNN, tf-keras' ``standard_lstm``, Keras 3's
``backend.lstm``), so the same config runs through code the ``LSTM`` layer may skip. The cell takes the math
arguments, ``RNN`` the loop arguments; the weights live in ``layer.cell`` as in an ``LSTM``. A bidirectional
layer of this variant is also built the other documented way: ``Bidirectional(layer, backward_layer=...)`` with
an explicit backward ``RNN(LSTMCell)`` (``go_backwards=True``: Keras requires the opposite of the forward layer's),
where the default copies the forward layer's config itself.

``stacked-cells``: the whole stack as one ``RNN([LSTMCell(...), LSTMCell(...), ...])`` (Keras wraps the list in
``StackedRNNCells``), the other documented way to build a deep LSTM: each time step runs every cell in turn,
where the ``LSTM`` chain runs each layer over the whole sequence. The per-layer states come back as one
``[h, c]`` list per cell and ``initial_state`` takes them nested the same way. Without ``go_backwards`` and
``Bidirectional`` the two constructions compute the same network; with them they differ by design, not by a bug
(see :func:`stacked_cells_unsupported_reason`), so those configs are not drawn for this variant.
"""

from __future__ import annotations

__all__ = ["RNN_CELL", "STACKED_CELLS", "rnn_cell_layer", "stacked_cells_layer", "stacked_cells_unsupported_reason",
           "stack_size", "cell_grid", "flatten_states", "run_chain"]

RNN_CELL = "rnn-cell"
STACKED_CELLS = "stacked-cells"
#: LSTM constructor arguments that belong to the cell when the layer is built as RNN(LSTMCell)
_CELL_ARGS = frozenset({"activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
                        "bias_initializer", "unit_forget_bias", "dropout", "recurrent_dropout", "seed", "implementation"})


def _cell(keras, units: int, dtype: str, kw: dict):
    """``LSTMCell(units, **the cell arguments of kw)``."""
    return keras.layers.LSTMCell(units, dtype=dtype, **{k: v for k, v in kw.items() if k in _CELL_ARGS})


def _loop_args(kw: dict) -> dict:
    """The arguments of kw that belong to ``RNN`` (the loop), not to the cell."""
    return {k: v for k, v in kw.items() if k not in _CELL_ARGS}


def rnn_cell_layer(keras, units: int, dtype: str, kw: dict):
    """``RNN(LSTMCell(units, **cell arguments of kw), **the rest of kw)``."""
    return keras.layers.RNN(_cell(keras, units, dtype, kw), **_loop_args(kw))


def stacked_cells_layer(keras, units: int, dtype: str, kws: list[dict]):
    """``RNN([LSTMCell(units, **cell arguments of kws[l]) for each layer l], **the loop arguments of kws[0])``."""
    return keras.layers.RNN([_cell(keras, units, dtype, kw) for kw in kws], **_loop_args(kws[0]))


def stacked_cells_unsupported_reason(config, variant: str) -> str | None:
    """Configs for which ``RNN([cells])`` is a different network from the chain of ``LSTM`` layers."""
    if variant != STACKED_CELLS:
        return None
    if config.bidirectional:
        return ("stacked-cells: Bidirectional(RNN([cells])) runs each direction through the whole stack, where a "
                "bidirectional chain feeds both directions of a layer to the next (BIDI-2); one layer is rnn-cell")
    if config.go_backwards and config.num_layers > 1:
        return ("stacked-cells: RNN([cells], go_backwards=True) reads the sequence backwards once for the whole "
                "stack, where each go_backwards layer of a chain reverses its own input (DIR-1)")
    return None


def stack_size(layer) -> int | None:
    """The number of cells of an ``RNN([cells])`` layer; None for any other layer."""
    cells = getattr(getattr(layer, "cell", None), "cells", None)
    return None if cells is None else len(cells)


def cell_grid(layers: list, lstms) -> list[list[tuple[int, object]]]:
    """``grid[l][d] = (index of the chain element holding it, cell)`` for canonical layer ``l``, direction ``d``;
    ``lstms(element)`` lists an element's LSTM layers, forward first (LAYOUT-2 order)."""
    grid = []
    for index, element in enumerate(layers):
        per_direction = [getattr(lstm.cell, "cells", None) or [lstm.cell] for lstm in lstms(element)]
        grid.extend([[(index, cell) for cell in dirs] for dirs in zip(*per_direction)])
    return grid


def flatten_states(result) -> list:
    """A layer call's results with the per-cell ``[h, c]`` lists of ``RNN([cells])`` spread out."""
    return [t for r in result for t in (r if isinstance(r, (list, tuple)) else [r])]


def run_chain(layers: list, config, x, mask, flat_init, call) -> list:
    """Run the layer chain; returns [output(s)..., then per layer h_f, c_f (, h_b, c_b)].

    ``call(index, layer, inputs, mask, initial_state)`` runs one layer (direct call or stateless_call).
    Keras returns ``[out, h, c]``, bidirectional ``[out, h_f, c_f, h_b, c_b]`` and with merge_mode None
    ``[out_f, out_b, h_f, c_f, h_b, c_b]`` (BIDI-2, STATE-4); go_backwards output stays in processing
    order, which is canonical (DIR-2), so nothing is flipped here.
    """
    n_states = 2 * config.num_directions
    n_out = 2 if config.effective_merge_mode == "none" else 1
    states, inp, outs, l = [], x, [], 0
    for index, layer in enumerate(layers):
        cells = stack_size(layer)  # RNN([cells]) holds `cells` layers and takes their states nested
        span = cells or 1
        init = None if flat_init is None else list(flat_init[l * n_states:(l + span) * n_states])
        if cells and init is not None:  # nested per cell, a one-cell stack too
            init = [init[i * n_states:(i + 1) * n_states] for i in range(cells)]
        res = flatten_states(call(index, layer, inp, mask, init))
        outs, st = res[:n_out], res[n_out:]
        states.extend(st)
        inp, l = outs[0], l + span
    return outs + states


def explicit_backward_layer(adapter, config, variant: str, index: int, stateful: bool, layer_kwargs) -> dict:
    """``Bidirectional``'s ``backward_layer`` argument for the ``rnn-cell`` variant (empty for the others)."""
    if variant != RNN_CELL:
        return {}
    last = index == config.num_layers - 1
    extra = dict(layer_kwargs(index) if layer_kwargs else {}, go_backwards=True)  # Keras requires the opposite
    return {"backward_layer": adapter._new_lstm(config, variant, return_sequences=config.return_sequences if last
                                                else True, stateful=stateful, extra=extra)}
