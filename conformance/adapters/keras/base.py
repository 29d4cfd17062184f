"""What the Keras adapters share: Keras 3 on each backend (``keras3.py``) and tf-keras (``tf_keras.py``).

Both APIs build the same thing: a chain of ``LSTM`` (or ``Bidirectional(LSTM)``) layers, one per canonical
layer, each called with ``return_state=True`` (the only way Keras hands out every layer's final h, c) and
``return_sequences=True`` except the last, which follows the config (STACK-1). Weights go in through
``reference.layouts.to_keras`` and come out through ``from_keras`` only.

Speed (measured on this project's 2-core CI machines): building a layer with Keras' default initialisers
costs up to ~0.85 s on JAX (orthogonal recurrent init), and an eager call runs the time loop in Python
(~3 ms/step on TF). So layers are built with ``'zeros'`` initialisers, cached by *structure* (config without
weights, variant, device, batch for stateful layers) and re-filled with ``Variable.assign``; each backend
module wraps the chain in a traced function where that pays (``tf.function``, ``jax.jit``), keyed by the
call signature (mask?, initial state?, masked-output rule). Never ``model.predict`` (~50 ms a call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference import MERGE_MODES, Config, from_keras, to_keras

from ..base import Adapter, Capabilities, Output, Unsupported
from ..shared import LayerCache, per_layer
from .construction import (RNN_CELL, STACKED_CELLS, cell_grid, explicit_backward_layer, rnn_cell_layer, run_chain,
                           stacked_cells_layer, stacked_cells_unsupported_reason)
from .names import GELU_TANH_NAME, gelu_approximate, keras_activations
from .probe import PathProbe, numpy_zeros

__all__ = ["KerasAdapterBase", "KerasHandle", "Structure", "PathProbe", "keras_capabilities", "KERAS_OPTIONS",
           "KERAS_MERGE_MODES"]

KERAS_OPTIONS = frozenset({"return_sequences", "return_state", "go_backwards", "bidirectional", "num_layers",
                           "use_bias=False", "initial_state", "mask", "stateful", "defaults"})
KERAS_MERGE_MODES = MERGE_MODES  # Bidirectional offers every BIDI-2 merge


def keras_capabilities(hard_sigmoid: str) -> Capabilities:
    """What both Keras APIs run; ``hard_sigmoid`` names the registry function their ``'hard_sigmoid'`` is."""
    return Capabilities(options=KERAS_OPTIONS, activations=keras_activations(hard_sigmoid),
                        dtypes=("float32", "float64"), merge_modes=KERAS_MERGE_MODES, param_convention="keras",
                        max_layers=4)


@dataclass
class Structure:
    """Built Keras layers for one structure key, reused across cases with new weights."""

    layers: list  # one LSTM or Bidirectional per canonical layer
    runners: dict = field(default_factory=dict)  # call signature -> callable(x, mask, flat_init) -> flat outputs
    kernel_paths: dict = field(default_factory=dict)  # call signature -> path seen when it last ran Python
    owner: Any = None  # the handle whose weights the layers hold
    probe: Any = None


@dataclass
class KerasHandle:
    config: Config
    keras_weights: list  # to_keras(weights) in the config dtype
    variant: str
    device: str
    stateful: bool
    structure: Structure | None = None  # stateful layers are built at the first call (batch size fixed)
    batch: int | None = None


class KerasAdapterBase(Adapter):
    """Shared build/forward logic. Subclasses provide the framework hooks below (``_keras``,
    ``_variant_kwargs``, ``_device_scope``, ``_make_runner``, ``_to_numpy``, ``_reset``, ``_install_probe``,
    ``_kernel_path``) and the environment methods."""

    framework = "keras"
    variants: tuple[str, ...] = ("default",)
    #: every check goes through to_keras (LAYOUT-2: kernel/recurrent_kernel/bias, gates i, f, c, o) and passes
    #: the framework's own activation names (DEF-3: hard_sigmoid means ACT-3 or ACT-4 by API)
    exercises = ("LAYOUT-2", "DEF-3")
    #: structures kept per adapter instance; the oldest is dropped beyond this (traced graphs hold memory)
    cache_size = 48

    def __init__(self):
        self._cache = LayerCache(self.cache_size)
        self._versions: dict[str, str] | None = None

    # ---- hooks ---------------------------------------------------------------------------------
    def _keras(self):
        raise NotImplementedError

    def _variant_kwargs(self, variant: str) -> dict:
        raise NotImplementedError

    def _device_scope(self, device: str):
        raise NotImplementedError

    def _make_runner(self, structure: Structure, handle: KerasHandle, signature: tuple, probe: PathProbe) -> Callable:
        """A callable ``(x, mask, flat_init) -> flat outputs`` running ``self._chain`` (traced or eager)."""
        raise NotImplementedError

    def _to_numpy(self, t) -> np.ndarray:
        raise NotImplementedError

    def _reset(self, layer) -> None:
        raise NotImplementedError

    def _install_probe(self, layer, probe: PathProbe) -> None:
        raise NotImplementedError

    def _kernel_path(self, handle: KerasHandle, probe_cell_ran: bool) -> str:
        raise NotImplementedError

    # ---- capabilities per case ---------------------------------------------------------------------
    def unsupported_reason(self, config, variant, device):
        return (super().unsupported_reason(config, variant, device)
                or stacked_cells_unsupported_reason(config, variant))

    def variant_options(self, variant):  # Bidirectional over RNN([cells]) is another network (construction.py)
        return super().variant_options(variant) - ({"bidirectional"} if variant == STACKED_CELLS else set())

    def last_output_reading(self, config: Config, variant: str) -> str:
        # MASK-2: the Keras docs say zero_output_for_mask is "only used when return_sequences is True", so the
        # last output is the last valid step's (https://keras.io/api/layers/recurrent_layers/rnn/)
        return "last-valid"

    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        # MASK-2: Bidirectional sets zero_output_for_mask = return_sequences on both inner layers,
        # overriding what was passed (Keras 3 bidirectional.py, tf-keras bidirectional.py).
        if config.bidirectional:
            return ("zero",) if config.return_sequences else ("carry",)
        return ("carry", "zero")

    # ---- building ------------------------------------------------------------------------------
    def _activation_arg(self, registry_name: str):
        fw = self.capabilities.registry_to_framework(registry_name)
        return gelu_approximate(self._keras()) if fw == GELU_TANH_NAME else fw

    def _lstm_kwargs(self, config: Config, variant: str, *, return_sequences: bool, stateful: bool,
                     extra: dict | None = None) -> dict:
        keras = self._keras()
        kw = dict(return_sequences=return_sequences, return_state=True, go_backwards=config.go_backwards,
                  use_bias=config.use_bias, stateful=stateful, dtype=config.dtype,
                  activation=self._activation_arg(config.activation),
                  recurrent_activation=self._activation_arg(config.recurrent_activation))
        # the canonical weights are assigned right after; cheap initialisers keep builds fast. numpy zeros, not
        # 'zeros': on JAX 'zeros' and the unit_forget_bias concatenation each compile an XLA program per new
        # variable shape (~40 ms each, 4-5 per new structure); unit_forget_bias only sets the initial bias
        zeros = numpy_zeros(keras)
        kw.update(kernel_initializer=zeros, recurrent_initializer=zeros, bias_initializer=zeros, unit_forget_bias=False)
        kw.update(self._variant_kwargs(variant))
        kw.update(extra or {})  # e.g. build_dropout's dropout / recurrent_dropout / seed (TRAIN-*)
        return kw

    def _new_lstm(self, config: Config, variant: str, *, return_sequences: bool, stateful: bool,
                  extra: dict | None = None):
        keras = self._keras()
        kw = self._lstm_kwargs(config, variant, return_sequences=return_sequences, stateful=stateful, extra=extra)
        if variant == RNN_CELL:  # the same layer built as RNN(LSTMCell(...)) (construction.py)
            return rnn_cell_layer(keras, config.units, config.dtype, kw)
        return keras.layers.LSTM(config.units, **kw)

    def _build_layers(self, config: Config, variant: str, device: str, stateful: bool, batch: int | None,
                      layer_kwargs=None) -> list:
        """The layer chain; ``layer_kwargs(l)``, when given, adds LSTM constructor arguments for layer ``l``."""
        keras = self._keras()
        layers = []
        with self._device_scope(device):
            if variant == STACKED_CELLS:  # the whole stack as one RNN([LSTMCell, ...]) (construction.py)
                kws = [self._lstm_kwargs(config, variant, return_sequences=config.return_sequences, stateful=stateful,
                                         extra=layer_kwargs(l) if layer_kwargs else None)
                       for l in range(config.num_layers)]
                layer = stacked_cells_layer(keras, config.units, config.dtype, kws)
                layer.build((batch, None, config.input_dim))
                return [layer]
            for l in range(config.num_layers):
                last = l == config.num_layers - 1
                lstm = self._new_lstm(config, variant, return_sequences=config.return_sequences if last else True,
                                      stateful=stateful, extra=layer_kwargs(l) if layer_kwargs else None)
                layer = lstm
                if config.bidirectional:
                    mode = config.effective_merge_mode  # Keras spells merge 'none' as merge_mode=None
                    layer = keras.layers.Bidirectional(lstm, merge_mode=None if mode == "none" else mode,
                                                       dtype=config.dtype, **explicit_backward_layer(
                                                           self, config, variant, l, stateful, layer_kwargs))
                layer.build((batch, None, config.layer_input_dim(l)))
                layers.append(layer)
        return layers

    def _structure(self, handle: KerasHandle, batch: int | None) -> Structure:
        key = (handle.config, handle.variant, handle.device, handle.stateful, batch)
        struct = self._cache.get(key)
        if struct is None:
            struct = self._cache.put(key, Structure(self._build_layers(handle.config, handle.variant, handle.device,
                                                                       handle.stateful, batch)))
        if handle.stateful:  # reused or fresh, a stateful layer starts from zeros: the reset runs in every case
            for layer in struct.layers:
                self._reset(layer)
        self._assign(struct, handle)
        return struct

    @staticmethod
    def _lstms(layer) -> list:
        """The LSTM layers inside one chain element, forward first (LAYOUT-2 direction order)."""
        return [layer.forward_layer, layer.backward_layer] if hasattr(layer, "forward_layer") else [layer]

    def _assign(self, struct: Structure, handle: KerasHandle) -> None:
        struct.owner = handle
        for cells, dirs in zip(cell_grid(struct.layers, self._lstms), handle.keras_weights):
            for (_, cell), kw in zip(cells, dirs):
                cell.kernel.assign(kw["kernel"])
                cell.recurrent_kernel.assign(kw["recurrent_kernel"])
                if "bias" in kw:
                    cell.bias.assign(kw["bias"])

    def build(self, config, weights, *, variant="default", device="cpu", stateful=False):
        self.require_supported(config, variant, device)
        kweights = to_keras(weights.astype(config.dtype), config)
        handle = KerasHandle(config, kweights, variant, device, stateful)
        if not stateful:  # a stateful layer needs the batch size: built at the first call
            handle.structure = self._structure(handle, None)
        return handle

    # ---- running -------------------------------------------------------------------------------
    _chain = staticmethod(run_chain)  # the layer chain, flat states (construction.py)

    def eager_runner(self, struct: Structure, handle: KerasHandle, probe: PathProbe) -> Callable:
        """The chain called layer by layer, ``(x, mask, flat_init) -> flat outputs``: run as is, or the
        function a backend traces; either way the probe learns that the Python body ran."""
        cfg, layers = handle.config, struct.layers

        def run(x, mask, flat_init):
            probe.traced = True
            return self._chain(layers, cfg, x, mask, flat_init, self._call_layer)

        return run

    @staticmethod
    def _call_kwargs(mask, initial_state) -> dict:
        """A layer call's optional arguments, given only when present."""
        kwargs = {} if mask is None else {"mask": mask}
        if initial_state is not None:
            kwargs["initial_state"] = initial_state
        return kwargs

    def _call_layer(self, index, layer, inputs, mask, initial_state):
        return layer(inputs, **self._call_kwargs(mask, initial_state))

    def _check_call(self, handle: KerasHandle, mask) -> None:
        """Per-call support beyond the config (raises Unsupported: the draw is rejected)."""

    def forward(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        cfg = handle.config
        rules = self.masked_output_rules(cfg, handle.variant)
        if mask is not None and masked_output not in rules:
            raise Unsupported(f"{self.name}:{handle.variant} produces masked outputs by rule(s) {rules} for this "
                              f"config, not {masked_output!r}")
        self._check_call(handle, mask)
        x = np.ascontiguousarray(x, dtype=cfg.dtype)
        batch = x.shape[0]
        if handle.stateful:
            if handle.structure is None:
                handle.structure, handle.batch = self._structure(handle, batch), batch
            elif batch != handle.batch:
                raise ValueError(f"stateful layer built for batch {handle.batch}, called with batch {batch}")
        struct = handle.structure
        if struct.owner is not handle:  # another handle with the same structure was built since
            if handle.stateful:
                raise RuntimeError("a stateful handle's cached layers were taken over by a newer handle")
            self._assign(struct, handle)
        flat_init = None
        if initial_state is not None:
            flat_init = [np.ascontiguousarray(a, dtype=cfg.dtype)
                         for dirs in initial_state for pair in dirs for a in pair]
        zero = None
        if mask is not None:
            mask = np.ascontiguousarray(mask, dtype=bool)
            zero = masked_output == "zero"
            if not cfg.bidirectional:  # Bidirectional fixes the flag itself (masked_output_rules)
                for layer in struct.layers:
                    layer.zero_output_for_mask = zero  # MASK-2; read by the layer at call/trace time
        signature = (mask is not None, flat_init is not None, zero)
        runner = struct.runners.get(signature)
        probe = struct.probe
        if probe is None:
            probe = struct.probe = PathProbe()
            for layer in struct.layers:
                self._install_probe(layer, probe)
        if runner is None:
            runner = struct.runners[signature] = self._make_runner(struct, handle, signature, probe)
        precision = self._precision(handle)  # before the call: it may switch TF32 off
        probe.reset()
        with self._device_scope(handle.device):
            flat = runner(x, mask, flat_init)
        if probe.traced:
            struct.kernel_paths[signature] = self._kernel_path(handle, probe.cell_ran)
        flat = [self._to_numpy(t) for t in flat]
        n_out = 2 if cfg.effective_merge_mode == "none" else 1
        output = tuple(flat[:n_out]) if n_out == 2 else flat[0]
        states = flat[n_out:]  # [h, c] per layer and direction, layer-major
        h = per_layer(states[0::2], cfg.num_layers, cfg.num_directions)
        c = per_layer(states[1::2], cfg.num_layers, cfg.num_directions)
        return Output(output=output, h=h, c=c, kernel_path=struct.kernel_paths.get(signature),
                      precision=precision)

    def _precision(self, handle: KerasHandle) -> str:
        return "ieee"

    def bare_forward(self, handle, x):
        """The same runner as :meth:`forward` (traced where forward traces) on inputs converted once,
        without the numpy conversion of inputs and outputs."""
        if handle.stateful:
            raise Unsupported("bare_forward runs non-stateful handles only")
        x = np.ascontiguousarray(x, dtype=handle.config.dtype)
        struct = handle.structure
        if struct.owner is not handle:
            self._assign(struct, handle)
        runner = self._make_runner(struct, handle, (False, False, None), PathProbe())
        with self._device_scope(handle.device):
            xt = self._to_tensor(x)
            runner(xt, None, None)  # trace/compile outside the timed calls

        def call():
            with self._device_scope(handle.device):
                return self._block(runner(xt, None, None))

        return call

    def _to_tensor(self, x: np.ndarray):
        return self._keras().ops.convert_to_tensor(x)

    def _variable_to_numpy(self, v) -> np.ndarray:
        return self._to_numpy(v.value)

    def _block(self, outputs):
        """Wait for asynchronously dispatched results (JAX, CUDA) so a timed call includes the work."""
        return outputs

    # ---- other API -----------------------------------------------------------------------------
    def param_count(self, handle):
        struct = handle.structure or self._structure(handle, 1)
        return int(sum(layer.count_params() for layer in struct.layers))

    def reset_state(self, handle):
        if not handle.stateful:
            raise Unsupported("reset_state needs a handle built with stateful=True")
        if handle.structure is not None:
            for layer in handle.structure.layers:
                self._reset(layer)

    def default_weights(self, config):
        """DEF-1/DEF-2: a fresh ``LSTM(units)`` with every default, built on ``input_dim`` (not cached)."""
        keras = self._keras()
        with self._device_scope("cpu"):
            layer = keras.layers.LSTM(config.units)
            layer.build((None, None, config.input_dim))
        cell = layer.cell
        arrays = {"kernel": cell.kernel, "recurrent_kernel": cell.recurrent_kernel}
        if cell.use_bias:
            arrays["bias"] = cell.bias
        weights = from_keras([[{k: np.asarray(self._variable_to_numpy(v), dtype=np.float64)
                                for k, v in arrays.items()}]],
                             Config(input_dim=config.input_dim, units=config.units, use_bias=cell.use_bias))
        names = {}
        for role in ("activation", "recurrent_activation"):
            fw = keras.activations.serialize(getattr(cell, role))
            fw = fw if isinstance(fw, str) else str(fw)
            # an unmapped name is reported as itself, so DEF-2 fails naming it
            names[role] = self.capabilities.activations.get(fw, f"unmapped Keras activation {fw!r}")
        return weights, names

    # ---- gradients and training mode (GRAD-*, TRAIN-*): the backends' autodiff in keras/gradients.py --------
    def gradient_unsupported_reason(self, config, variant, device):
        from .gradients import gradient_unsupported_reason

        return gradient_unsupported_reason(self, config, variant, device)

    def gradients(self, handle, x, *, g_out, g_h, g_c, initial_state, mask=None, masked_output="carry",
                  training=False):
        from .gradients import keras_gradients

        return keras_gradients(self, handle, x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=initial_state,
                               mask=mask, masked_output=masked_output, training=training)

    def dropout_unsupported_reason(self, config, variant, device):
        from .gradients import dropout_unsupported_reason

        return dropout_unsupported_reason(self, config, variant, device)

    def build_dropout(self, config, weights, *, dropout, recurrent_dropout, variant="default", device="cpu"):
        from .gradients import build_dropout

        return build_dropout(self, config, weights, dropout=dropout, recurrent_dropout=recurrent_dropout,
                             variant=variant, device=device)

    def forward_training(self, handle, x, *, mask=None, initial_state=None, masked_output="carry"):
        from .gradients import forward_training

        return forward_training(self, handle, x, mask=mask, initial_state=initial_state,
                                masked_output=masked_output)
