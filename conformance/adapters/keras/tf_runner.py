"""The TensorFlow runner both TF-based Keras adapters use (``keras-tensorflow``, ``tf-keras``): the layer chain
as a ``tf.function``, or eagerly where tracing costs more than it saves; and the devices TensorFlow sees.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import KerasAdapterBase, KerasHandle, PathProbe, Structure

__all__ = ["tf_runner", "tf_devices", "EAGER_MAX_STEPS"]


#: TF: below this many layer-direction steps a first call runs eagerly (TF 2.21 on 2 CPU cores: ~3.4 ms per
#: eager step against ~0.2 s to trace each layer-direction)
EAGER_MAX_STEPS = 64


def tf_runner(adapter: KerasAdapterBase, struct: Structure, handle: KerasHandle, signature: tuple,
              probe: PathProbe, *, eager: bool) -> Callable:
    """The chain as a ``tf.function`` with a shape-relaxed input signature (batch and time free), so one
    trace serves every case of the structure (~2 ms a call instead of ~3 ms per time step eagerly).

    Most drawn structures are called once or twice, so short calls run eagerly (the same ops without a
    graph); the trace is made for long sequences or from the third call on (hypothesis replays).
    ``eager=True`` always for unrolled layers: unrolling needs a static time dimension, and tracing an
    unrolled loop costs ~1.4 s at T=64 and ~15 s at T=512, far more than running it eagerly.
    """
    import tensorflow as tf

    cfg = handle.config
    has_mask, has_init, _ = signature
    dt = tf.as_dtype(cfg.dtype)
    B = handle.batch  # fixed only for stateful layers
    H, u = cfg.hidden_size, cfg.units

    chain = adapter.eager_runner(struct, handle, probe)

    def convert(x, mask, init):
        # tf-keras wants tensors (not numpy) as initial_state
        return (tf.convert_to_tensor(x), None if mask is None else tf.convert_to_tensor(mask),
                None if init is None else [tf.convert_to_tensor(a) for a in init])

    run_eagerly = lambda x, mask, init: chain(*convert(x, mask, init))  # noqa: E731
    if eager:
        return run_eagerly
    specs = [tf.TensorSpec((B, None, cfg.input_dim), dt)]
    if has_mask:
        specs.append(tf.TensorSpec((B, None), tf.bool))
    if has_init:
        n = cfg.num_layers * cfg.num_directions
        specs.append([tf.TensorSpec((B, s), dt) for _ in range(n) for s in (H, u)])

    def traced(*args):
        x, rest = args[0], list(args[1:])
        mask = rest.pop(0) if has_mask else None
        init = list(rest.pop(0)) if has_init else None
        return chain(x, mask, init)

    fn, short_calls = None, 0

    def run(x, mask, init):
        nonlocal fn, short_calls
        if fn is None and x.shape[1] * cfg.num_layers * cfg.num_directions <= EAGER_MAX_STEPS and short_calls < 2:
            short_calls += 1  # continuation and stateful checks call twice: still cheaper eagerly
            return run_eagerly(x, mask, init)
        if fn is None:
            fn = tf.function(traced, input_signature=specs, autograph=False)
        x, mask, init = convert(x, mask, init)
        args = [x] + ([mask] if has_mask else []) + ([init] if has_init else [])
        return fn(*args)

    return run


def tf_devices() -> list[str]:
    import tensorflow as tf

    return ["cpu"] + (["gpu"] if tf.config.list_physical_devices("GPU") else [])
