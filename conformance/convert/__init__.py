"""``lstm-conformance convert``: port LSTM weights between Keras, PyTorch, ONNX and Flax files through the
canonical layout (reference.layouts), verified by running both sides against the reference (NUM-1)."""

from .command import add_parser, convert, run_convert

__all__ = ["add_parser", "convert", "run_convert"]
