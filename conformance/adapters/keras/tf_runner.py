"""The TensorFlow runner both TF-based Keras adapters use (``keras-tensorflow``, ``tf-keras``): the layer chain
as a ``tf.function``, or eagerly where tracing costs more than it saves; and the devices TensorFlow sees.
"""

from __future__ import annotations

from collections.abc import Callable

from .base import KerasAdapterBase, KerasHandle, PathProbe, Structure

__all__ = ["tf_runner", "tf_devices", "EAGER_STEP_BUDGET"]


#: time steps a structure runs eagerly (summed over its calls) before its chain is traced instead. Both costs
#: scale with the layer-directions, so the break-even is in time steps alone: tracing costs about as much as
#: this many eager steps (TF 2.21, 2 CPU cores, CPU time per layer-direction: Keras 3 ~6 ms an eager step
#: against ~180 ms a trace; tf-keras ~2.5 ms against ~500 ms). Adapters set their own (``eager_step_budget``).
EAGER_STEP_BUDGET = 32


def tf_runner(adapter: KerasAdapterBase, struct: Structure, handle: KerasHandle, signature: tuple,
              probe: PathProbe, *, eager: bool) -> Callable:
    """The chain as a ``tf.function`` with a shape-relaxed input signature (batch and time free), so one
    trace serves every case of the structure (~2 ms a call instead of ~3 ms per time step eagerly).

    Most drawn structures are called once or twice, so a structure runs eagerly (the same ops without a graph)
    until its calls have spent the adapter's ``eager_step_budget`` time steps, about what one trace costs, and
    is traced from the call that would exceed it: never more than about twice the cheaper of the two.
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

    fn, eager_steps = None, 0
    budget = getattr(adapter, "eager_step_budget", EAGER_STEP_BUDGET)

    def run(x, mask, init):
        nonlocal fn, eager_steps
        if fn is None and eager_steps + x.shape[1] <= budget:
            eager_steps += x.shape[1]
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
