"""Gradients and training-mode calls of the Keras adapters (spec/gradients.md GRAD-*, spec/training.md TRAIN-*).

Each backend's own autodiff differentiates the same layer chain :meth:`KerasAdapterBase._chain` runs for a
forward call: ``tf.GradientTape`` (keras-tensorflow, tf-keras), ``jax.vjp`` of the layers' ``stateless_call``
under ``jax.jit`` (keras-jax), ``torch.autograd.grad`` (keras-torch). The loss is GRAD-1's
``sum(output * g_out) + sum(h_T * g_h) + sum(c_T * g_c)``; the gradients of each cell's ``kernel``,
``recurrent_kernel`` and ``bias`` go back to canonical tensors through ``reference.layouts.from_keras`` only
(LAYOUT-2: one bias, gates i, f, c, o), so no gate is permuted or bias split here.

Dropout (TRAIN-*): :func:`build_dropout` builds the adapter's layer chain with Keras' ``dropout`` /
``recurrent_dropout`` set, outside the adapter's structure cache (its layers carry the rates and, on JAX, a
seed-generator state that training calls advance). The Keras docs: ``dropout`` is the "Fraction of the units to
drop for the linear transformation of the inputs", ``recurrent_dropout`` "of the recurrent state"; both act
only when the layer is called with ``training=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference import Config, Weights, from_keras, to_keras

from ..base import GradientOutput, Output, Unsupported
from ..shared import per_layer
from .base import KerasAdapterBase, KerasHandle, PathProbe, Structure
from .construction import cell_grid

__all__ = ["keras_gradients", "build_dropout", "forward_training", "DropoutHandle", "KERAS_WEIGHT_NAMES",
           "gradient_unsupported_reason", "dropout_unsupported_reason"]

#: a Keras LSTM cell's trainable weights (LAYOUT-2), in the order from_keras reads them
KERAS_WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


@dataclass
class DropoutHandle(KerasHandle):
    """A handle whose private layers were built with Keras' dropout options (never in the structure cache:
    a cached structure is shared by every handle of the same config, and dropout is no part of Config)."""

    dropout: float = 0.0
    recurrent_dropout: float = 0.0


# ---- support ---------------------------------------------------------------------------------------------------
def gradient_unsupported_reason(adapter: KerasAdapterBase, config: Config, variant: str, device: str) -> str | None:
    """Every config a Keras adapter runs forward has gradients (the backends' autodiff covers the whole layer);
    per-call limits (the cuDNN paths' masks) are raised per call, as for :meth:`forward`."""
    return adapter.unsupported_reason(config, variant, device)


def dropout_unsupported_reason(adapter: KerasAdapterBase, config: Config, variant: str, device: str) -> str | None:
    """Keras' dropout options exist on every variant; ``recurrent_dropout`` with the cuDNN variant is refused
    per build (Keras 3 ``LSTM.inner_loop`` tries cuDNN only without it, so ``use_cudnn=True`` raises)."""
    return adapter.unsupported_reason(config, variant, device)


def _backend(adapter: KerasAdapterBase) -> str:
    """Which autodiff: Keras 3 adapters name their backend; tf-keras runs on TensorFlow."""
    return getattr(adapter, "backend", "") or "tensorflow"


# ---- one call, prepared as forward prepares it ---------------------------------------------------------------------
@dataclass
class _Call:
    struct: Structure
    x: np.ndarray
    mask: np.ndarray | None
    init: list[np.ndarray]  # [h, c] per layer and direction, layer-major
    probe: PathProbe
    signature: tuple


def _prepare(adapter: KerasAdapterBase, handle: KerasHandle, x, mask, initial_state, masked_output) -> _Call:
    """What :meth:`KerasAdapterBase.forward` does before it calls its runner: the masked-output rule, per-call
    support, the handle's weights in the layers, the zero_output_for_mask flag (MASK-2), the path probe."""
    cfg = handle.config
    if handle.stateful:
        # GRAD-3: a stateful layer's stored state is a constant of the call; its gradient is that of the call
        # started from the stored state, which the explicit initial_state gives already
        raise Unsupported("gradients and training calls run on non-stateful layers (GRAD-3: the stored state "
                          "is a constant of the call; pass it as initial_state)")
    rules = adapter.masked_output_rules(cfg, handle.variant)
    if mask is not None and masked_output not in rules:
        raise Unsupported(f"{adapter.name}:{handle.variant} produces masked outputs by rule(s) {rules} for this "
                          f"config, not {masked_output!r}")
    adapter._check_call(handle, mask)
    struct = handle.structure
    if struct.owner is not handle:
        adapter._assign(struct, handle)
    x = np.ascontiguousarray(x, dtype=cfg.dtype)
    B = x.shape[0]
    if initial_state is None:  # the zero state (STATE-1), given explicitly so that its gradient exists
        initial_state = [[(np.zeros((B, cfg.hidden_size)), np.zeros((B, cfg.units)))] * cfg.num_directions
                         for _ in range(cfg.num_layers)]
    init = [np.ascontiguousarray(a, dtype=cfg.dtype) for dirs in initial_state for pair in dirs for a in pair]
    zero = None
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=bool)
        zero = masked_output == "zero"
        if not cfg.bidirectional:  # Bidirectional fixes the flag itself (masked_output_rules)
            for layer in struct.layers:
                layer.zero_output_for_mask = zero
    if struct.probe is None:
        struct.probe = PathProbe()
        for layer in struct.layers:
            adapter._install_probe(layer, struct.probe)
    return _Call(struct, x, mask, init, struct.probe, (mask is not None, True, zero))


def _variables(adapter: KerasAdapterBase, struct: Structure) -> list[tuple[int, int, str, object, int, int]]:
    """``(layer, direction, name, variable, chain element, index in its trainable_variables)`` for every cell
    weight (one chain element holds several layers when it is an ``RNN([cells])``)."""
    out = []
    for l, cells in enumerate(cell_grid(struct.layers, adapter._lstms)):
        for d, (element, cell) in enumerate(cells):
            trainable = list(struct.layers[element].trainable_variables)
            for name in KERAS_WEIGHT_NAMES:
                var = getattr(cell, name, None)
                if var is None:  # use_bias=False
                    continue
                index = next(i for i, v in enumerate(trainable) if v is var)
                out.append((l, d, name, var, element, index))
    return out


def _cotangents(cfg: Config, g_out, g_h, g_c, B: int) -> list[np.ndarray]:
    """GRAD-1's loss weights in the chain's output order: output(s), then h, c per layer and direction."""
    dt = cfg.dtype
    outs = list(g_out) if cfg.effective_merge_mode == "none" else [g_out]
    flat = [np.ascontiguousarray(g, dtype=dt) for g in outs]
    for l in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            for g, size in ((g_h, cfg.hidden_size), (g_c, cfg.units)):
                a = None if g is None else g[l][d]
                flat.append(np.zeros((B, size), dt) if a is None else np.ascontiguousarray(a, dtype=dt))
    return flat


def _layer_call(adapter: KerasAdapterBase, training: bool) -> Callable:
    def call(index, layer, inputs, mask, initial_state):
        return layer(inputs, training=training, **adapter._call_kwargs(mask, initial_state))

    return call


# ---- the autodiff of each backend ------------------------------------------------------------------------------
# Each returns (flat outputs, d/dx, [d/d init], [d/d variable] in _variables order) as framework tensors.

def _tensorflow(adapter, handle, call: _Call, cots, variables, training: bool, grads: bool):
    import tensorflow as tf

    cfg = handle.config
    x = tf.convert_to_tensor(call.x)
    init = [tf.convert_to_tensor(a) for a in call.init]  # tf-keras wants tensors as initial_state
    mask = None if call.mask is None else tf.convert_to_tensor(call.mask)
    layer_call = _layer_call(adapter, training)
    if not grads:
        return adapter._chain(call.struct.layers, cfg, x, mask, init, layer_call), None, None, None
    with tf.GradientTape() as tape:
        tape.watch([x, *init])
        flat = adapter._chain(call.struct.layers, cfg, x, mask, init, layer_call)
        loss = tf.add_n([tf.reduce_sum(o * tf.cast(c, o.dtype)) for o, c in zip(flat, cots)])
    sources = [x, *init, *(v for _, _, _, v, _, _ in variables)]
    g = tape.gradient(loss, sources, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return flat, g[0], g[1:1 + len(init)], g[1 + len(init):]


def _torch(adapter, handle, call: _Call, cots, variables, training: bool, grads: bool):
    import torch

    cfg = handle.config
    params = [v.value for _, _, _, v, _, _ in variables]  # the torch Parameters Keras computes with
    dev = params[0].device
    x = torch.tensor(call.x, device=dev, requires_grad=grads)
    init = [torch.tensor(a, device=dev, requires_grad=grads) for a in call.init]
    mask = None if call.mask is None else torch.as_tensor(call.mask, device=dev)
    layer_call = _layer_call(adapter, training)
    if not grads:
        with torch.no_grad():
            return adapter._chain(call.struct.layers, cfg, x, mask, init, layer_call), None, None, None
    with torch.enable_grad():
        flat = adapter._chain(call.struct.layers, cfg, x, mask, init, layer_call)
        loss = sum((o * torch.as_tensor(c, device=dev, dtype=o.dtype)).sum() for o, c in zip(flat, cots))
        g = torch.autograd.grad(loss, [x, *init, *params], allow_unused=True)
    g = [torch.zeros_like(s) if gi is None else gi for gi, s in zip(g, [x, *init, *params])]
    return [o.detach() for o in flat], g[0], g[1:1 + len(init)], g[1 + len(init):]


def _jax_runner(adapter, handle, struct: Structure, training: bool, grads: bool, probe: PathProbe) -> Callable:
    """One jitted function per structure and call kind (like the forward runner: the weights are arguments,
    so a compile serves every case of the structure): ``jax.vjp`` of the stateless chain."""
    import jax

    cfg, layers = handle.config, struct.layers

    def pure(trainable, non_trainable, x, mask, init, cots):
        probe.traced = True

        def chain(trainable, x, init):
            new_nt = list(non_trainable)

            def call(index, layer, inputs, m, st):
                out, new_nt[index] = layer.stateless_call(trainable[index], non_trainable[index], inputs,
                                                          training=training, **adapter._call_kwargs(m, st))
                return out

            return adapter._chain(layers, cfg, x, mask, init, call), new_nt

        if not grads:
            flat, new_nt = chain(trainable, x, init)
            return flat, new_nt, None, None, None
        flat, vjp, new_nt = jax.vjp(chain, trainable, x, init, has_aux=True)
        g_tr, g_x, g_init = vjp([c.astype(o.dtype) for c, o in zip(cots, flat)])
        return flat, new_nt, g_tr, g_x, g_init

    return jax.jit(pure)


def _jax(adapter, handle, call: _Call, cots, variables, training: bool, grads: bool):
    struct = call.struct
    # runners live with their structure (evicted with it); keyed apart from the forward runners
    runners = struct.__dict__.setdefault("gradient_runners", {})
    key = (call.signature, training, grads)
    runner = runners.get(key)
    if runner is None:
        runner = runners[key] = _jax_runner(adapter, handle, struct, training, grads, call.probe)
    layers = struct.layers
    trainable = [[v.value for v in layer.trainable_variables] for layer in layers]
    non_trainable = [[v.value for v in layer.non_trainable_variables] for layer in layers]
    flat, new_nt, g_tr, g_x, g_init = runner(trainable, non_trainable, call.x, call.mask, call.init, cots)
    for layer, values in zip(layers, new_nt):  # the seed generators advance, as an eager training call's do
        for v, value in zip(layer.non_trainable_variables, values):
            v.assign(value)
    if not grads:
        return flat, None, None, None
    return flat, g_x, list(g_init), [g_tr[element][index] for _, _, _, _, element, index in variables]


_AUTODIFF = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def _run(adapter: KerasAdapterBase, handle: KerasHandle, x, *, mask, initial_state, masked_output, training: bool,
         cotangents: Callable | None):
    """Prepare, run the backend's call (with its VJP when ``cotangents`` is given), return numpy results."""
    cfg = handle.config
    call = _prepare(adapter, handle, x, mask, initial_state, masked_output)
    variables = _variables(adapter, call.struct)
    cots = None if cotangents is None else cotangents(call.x.shape[0])
    precision = adapter._precision(handle)  # before the call: it may switch TF32 off
    call.probe.reset()
    with adapter._device_scope(handle.device):
        flat, gx, ginit, gvars = _AUTODIFF[_backend(adapter)](adapter, handle, call, cots, variables, training,
                                                             cotangents is not None)
    kernel_paths = call.struct.__dict__.setdefault("gradient_kernel_paths", {})
    key = (call.signature, training)
    if call.probe.traced or _backend(adapter) != "jax":  # eager calls always ran the Python body
        kernel_paths[key] = adapter._kernel_path(handle, call.probe.cell_ran)
    n_out = 2 if cfg.effective_merge_mode == "none" else 1
    flat = [adapter._to_numpy(t) for t in flat]
    states = flat[n_out:]
    output = Output(output=tuple(flat[:n_out]) if n_out == 2 else flat[0],
                    h=per_layer(states[0::2], cfg.num_layers, cfg.num_directions),
                    c=per_layer(states[1::2], cfg.num_layers, cfg.num_directions),
                    kernel_path=kernel_paths.get(key), precision=precision)
    if cotangents is None:
        return output, None
    as_np = lambda t: np.asarray(adapter._to_numpy(t), dtype=cfg.dtype)  # noqa: E731
    ginit = [as_np(g) for g in ginit]
    grads = [[{} for _ in range(cfg.num_directions)] for _ in range(cfg.num_layers)]
    for (l, d, name, _, _, _), g in zip(variables, gvars):
        grads[l][d][name] = as_np(g)
    return output, GradientOutput(
        output=output, x=as_np(gx), h0=per_layer(ginit[0::2], cfg.num_layers, cfg.num_directions),
        c0=per_layer(ginit[1::2], cfg.num_layers, cfg.num_directions),
        weights=from_keras(grads, cfg),  # LAYOUT-2 read backwards: kernel (d, 4u) -> W[4, u, d], ...
        kernel_path=output.kernel_path)


# ---- the adapter API -----------------------------------------------------------------------------------------
def keras_gradients(adapter: KerasAdapterBase, handle: KerasHandle, x, *, g_out, g_h, g_c, initial_state,
                    mask=None, masked_output="carry", training=False) -> GradientOutput:
    """:meth:`Adapter.gradients` for a Keras adapter (GRAD-1)."""
    cfg = handle.config
    _, grads = _run(adapter, handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output,
                    training=training, cotangents=lambda B: _cotangents(cfg, g_out, g_h, g_c, B))
    return grads


def forward_training(adapter: KerasAdapterBase, handle: KerasHandle, x, *, mask=None, initial_state=None,
                     masked_output="carry") -> Output:
    """:meth:`Adapter.forward_training`: the chain called with ``training=True`` (TRAIN-*)."""
    output, _ = _run(adapter, handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output,
                     training=True, cotangents=None)
    return output


def build_dropout(adapter: KerasAdapterBase, config: Config, weights: Weights, *, dropout: float,
                  recurrent_dropout: float, variant: str = "default", device: str = "cpu",
                  seed: int | None = None) -> DropoutHandle:
    """:meth:`Adapter.build_dropout`: the adapter's own layer chain (``_build_layers``: activations, variant
    options) with ``dropout``/``recurrent_dropout`` (and ``seed``) set on every LSTM."""
    for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{name}={rate!r}: must be in [0, 1)")
    reason = dropout_unsupported_reason(adapter, config, variant, device)
    if reason:
        raise Unsupported(reason)
    if variant == "cudnn" and recurrent_dropout > 0:
        raise Unsupported("use_cudnn=True raises with recurrent_dropout > 0 (Keras 3 LSTM.inner_loop)")
    layers = adapter._build_layers(config, variant, device, False, None, layer_kwargs=lambda l: {
        "dropout": dropout, "recurrent_dropout": recurrent_dropout, "seed": None if seed is None else seed + l})
    handle = DropoutHandle(config, to_keras(weights.astype(config.dtype), config), variant, device, False,
                           dropout=dropout, recurrent_dropout=recurrent_dropout)
    handle.structure = Structure(layers)
    adapter._assign(handle.structure, handle)
    return handle
