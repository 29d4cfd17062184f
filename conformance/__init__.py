"""lstm-conformance: property-based conformance checks of LSTM implementations against ``reference``."""

__version__ = "0.1.0"
