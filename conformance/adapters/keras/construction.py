"""Other ways to construct the same Keras LSTM layer, as adapter variants (each has had its own bugs).

``rnn-cell``: ``RNN(LSTMCell(...))`` instead of ``LSTM(...)``, in Keras 3 and tf-keras. The generic RNN loop
steps the cell's ``call``: never the fused LSTM kernels (cuDNN, tf-keras' ``standard_lstm``, Keras 3's
``backend.lstm``), so the same config runs through code the ``LSTM`` layer may skip. The cell takes the math
arguments, ``RNN`` the loop arguments; the weights live in ``layer.cell`` as in an ``LSTM``. A bidirectional
layer of this variant is also built the other documented way: ``Bidirectional(layer, backward_layer=...)`` with
an explicit backward ``RNN(LSTMCell)`` (``go_backwards=True``: Keras requires the opposite of the forward layer's),
where the default copies the forward layer's config itself.
"""

from __future__ import annotations

__all__ = ["RNN_CELL", "rnn_cell_layer", "explicit_backward_layer"]

RNN_CELL = "rnn-cell"
#: LSTM constructor arguments that belong to the cell when the layer is built as RNN(LSTMCell)
_CELL_ARGS = frozenset({"activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
                        "bias_initializer", "unit_forget_bias", "dropout", "recurrent_dropout", "seed", "implementation"})


def rnn_cell_layer(keras, units: int, dtype: str, kw: dict):
    """``RNN(LSTMCell(units, **cell arguments of kw), **the rest of kw)``."""
    cell_kw = {k: v for k, v in kw.items() if k in _CELL_ARGS}
    rnn_kw = {k: v for k, v in kw.items() if k not in _CELL_ARGS}
    return keras.layers.RNN(keras.layers.LSTMCell(units, dtype=dtype, **cell_kw), **rnn_kw)


def explicit_backward_layer(adapter, config, variant: str, index: int, stateful: bool, layer_kwargs) -> dict:
    """``Bidirectional``'s ``backward_layer`` argument for the ``rnn-cell`` variant (empty for the others)."""
    if variant != RNN_CELL:
        return {}
    last = index == config.num_layers - 1
    extra = dict(layer_kwargs(index) if layer_kwargs else {}, go_backwards=True)  # Keras requires the opposite
    return {"backward_layer": adapter._new_lstm(config, variant, return_sequences=config.return_sequences if last
                                                else True, stateful=stateful, extra=extra)}
