"""Keras 3 ``LSTM`` on each backend: ``keras-tensorflow``, ``keras-jax``, ``keras-torch``.

Keras 3 fixes its backend per process (``KERAS_BACKEND``), so each backend is its own adapter and a
process can run only the one it was started with; the others report *not installed* with the reason.

Variants (each a separately recorded kernel path, Keras 3.15):
  ``default``  ``LSTM(...)`` as a user writes it (``use_cudnn='auto'``, ``implementation=2``: fused gates).
  ``unroll``   ``unroll=True``: the step loop unrolled in Python/graph instead of a symbolic loop (on JAX
               only with LSTM_CONFORMANCE_SLOW_VARIANTS=1: XLA compile time grows with every step).
  ``impl1``    ``implementation=1``: one matmul per gate in ``LSTMCell.call`` (still accepted as a hidden
               kwarg; it changes the cell code, so the generic path computes differently). ``impl2`` is the
               default, so ``default`` is the impl2 run.
  ``cudnn``    ``use_cudnn=True``: only where the backend sees a GPU; skipped with "no GPU" elsewhere.
Which kernel actually ran is reported per call (``Output.kernel_path``): ``generic`` when Keras'
``LSTMCell.call`` ran (``backend.rnn`` step loop), otherwise the fused ``backend.lstm`` path: ``cudnn`` on a
GPU, ``fused`` for Keras-on-torch's CPU ``_fallback_lstm`` (one input matmul for all steps, then a torch loop;
taken whenever there is no mask and ``use_cudnn`` is not False, even with ``unroll=True`` or
``implementation=1``).
"""

from __future__ import annotations

import os

from ..base import Unsupported
from ..jax_cache import use_compilation_cache
from ..shared import (
    ieee_matmuls_jax,
    ieee_matmuls_tf,
    ieee_matmuls_torch,
    jax_devices,
    right_padded_lengths,
    torch_devices,
)
from .base import KerasAdapterBase, keras_capabilities
from .compat import choose_backend, device_scope
from .tf_runner import tf_devices, tf_runner

__all__ = ["KerasTensorFlowAdapter", "KerasJaxAdapter", "KerasTorchAdapter"]

_CUDNN_ACTIVATIONS = ("tanh", "sigmoid")
#: opt-in for variants too slow for a CI run (keras-jax:unroll); tox passes LSTM_CONFORMANCE_* through
SLOW_VARIANTS_ENV = "LSTM_CONFORMANCE_SLOW_VARIANTS"
#: float64 on keras-jax and keras-torch (Keras 3.15.1): every backend declares float64, and on these two it is
#: a recorded finding (an xfail of NUM-5), not a refusal. Keras' type promotion maps float64 to float32 on
#: every backend but TensorFlow (keras/src/backend/common/dtypes.py BIT64_TO_BIT32_DTYPE), so
#: ``keras.ops.matmul`` of two float64 tensors returns float32 there; a float64 LSTM's generic step loop
#: (``LSTMCell.call``) then runs its matmuls in float32 while its variables and outputs say float64.


class _Keras3Adapter(KerasAdapterBase):
    backend = ""  # keras.backend.backend() this adapter needs, also the framework module imported and reported
    capabilities = keras_capabilities("hard_sigmoid_keras3")
    variants = ("default", "unroll", "impl1", "cudnn", "rnn-cell", "stacked-cells")
    supported = {"keras": ">=3.0.0"}  # 3.0.0, 3.8.0 and 3.15.1 run on each backend (compat.py)

    # ---- environment -------------------------------------------------------------------------
    def _keras(self):
        import keras

        return keras

    def unavailable_reason(self):
        choose_backend((self.backend,))  # a run asking for this backend gets it where nothing chose one yet
        try:
            import keras
        except ImportError as exc:
            return f"keras is not importable: {exc}"
        if not keras.__version__.split(".")[0].isdigit() or int(keras.__version__.split(".")[0]) < 3:
            return f"keras {keras.__version__} is not Keras 3"
        have = keras.backend.backend()
        if have != self.backend:
            return f"keras backend in this process is {have!r}; set KERAS_BACKEND={self.backend}"
        try:
            __import__(self.backend)
        except ImportError as exc:
            return f"{self.backend} is not importable: {exc}"
        return None

    def versions(self):
        if self._versions is None:
            import importlib

            import keras

            mod = importlib.import_module(self.backend)
            self._versions = {"keras": keras.__version__, self.backend: mod.__version__}
            self._versions.update(self._extra_versions())
        return self._versions

    def _extra_versions(self) -> dict[str, str]:
        return {}

    def _device_scope(self, device):
        import keras

        return device_scope(keras, self.backend, device)  # the release's own form (compat.py)

    # ---- variants ------------------------------------------------------------------------------
    def _variant_kwargs(self, variant):
        return {"default": {}, "unroll": {"unroll": True}, "impl1": {"implementation": 1},
                "cudnn": {"use_cudnn": True}, "rnn-cell": {}, "stacked-cells": {}}[variant]

    def variant_unavailable_reason(self, variant, device):
        if variant != "cudnn":
            return None
        if "gpu" not in self.devices():
            return f"no GPU: the cudnn variant runs only where {self.backend} sees a GPU"
        if device != "gpu":
            return "the cudnn variant runs only with --device gpu"
        return None

    def unsupported_reason(self, config, variant, device):
        reason = super().unsupported_reason(config, variant, device) or self.variant_unavailable_reason(variant, device)
        if reason or variant != "cudnn":
            return reason
        if (config.activation, config.recurrent_activation) != _CUDNN_ACTIVATIONS or not config.use_bias:
            # use_cudnn=True raises ValueError outside Keras' cudnn_ok conditions
            return "use_cudnn=True needs activation tanh, recurrent_activation sigmoid and use_bias=True"
        return None

    def masked_output_rules(self, config, variant):
        if variant == "cudnn" and self.backend == "tensorflow":
            # cuDNN zero-fills padded steps whatever zero_output_for_mask says; the last output is the
            # state at the last valid step (keras/src/backend/tensorflow/rnn.py _cudnn_lstm)
            return ("zero",) if config.return_sequences else ("carry",)
        return super().masked_output_rules(config, variant)

    def _check_call(self, handle, mask):
        if handle.variant != "cudnn" or mask is None:
            return
        if self.backend != "tensorflow":
            raise Unsupported(f"Keras 3 {self.backend} cuDNN path takes no mask (use_cudnn=True raises)")
        lengths = right_padded_lengths(mask)
        if lengths is None or lengths.min() < 1:
            raise Unsupported("the TF cuDNN path needs right-padded masks with >= 1 valid step per row")

    # ---- running -------------------------------------------------------------------------------
    def _to_numpy(self, t):
        import keras

        return keras.ops.convert_to_numpy(t)

    def _reset(self, layer):
        layer.reset_state()

    def _install_probe(self, layer, probe):
        for lstm in self._lstms(layer):
            probe.wrap(lstm.cell)

    def _fused_path_name(self, handle) -> str:
        return "cudnn"

    def _kernel_path(self, handle, cell_ran):
        if cell_ran:
            return "generic-unrolled" if handle.variant == "unroll" else "generic"
        return self._fused_path_name(handle)


class KerasTensorFlowAdapter(_Keras3Adapter):
    name = "keras-tensorflow"
    backend = "tensorflow"
    #: tf_runner: eager time steps before a structure's chain is traced (an eager step ~6 ms against a trace
    #: ~180 ms per layer-direction, measured in CPU time, Keras 3.15 on TF 2.21, 2 cores)
    eager_step_budget = 32

    def devices(self):
        return tf_devices()

    def _to_numpy(self, t):
        return t.numpy()  # EagerTensor; np.array(t) warns under numpy 2 (no copy= keyword)

    def _make_runner(self, struct, handle, signature, probe):
        return tf_runner(self, struct, handle, signature, probe, eager=handle.variant == "unroll")

    def _precision(self, handle):
        return ieee_matmuls_tf(handle.device)


class KerasJaxAdapter(_Keras3Adapter):
    name = "keras-jax"
    backend = "jax"
    # float64 is a recorded finding (see above); here ops.tanh (the default activation) is float32 too, even
    # with jax_enable_x64 (measured error ~1e-7)

    def variant_unavailable_reason(self, variant, device):
        if variant == "unroll" and not os.environ.get(SLOW_VARIANTS_ENV):
            # measured (jax 0.10.2, 2 CPU cores): XLA compiles each unrolled step, ~0.14 s per step and
            # direction with a mask (33 s for one 2-layer bidirectional T=58 case); eager is no cheaper, since
            # Keras' unstack slices with a static index, one compile per step. That is ~7 min per CI run.
            return (f"slow on JAX (XLA compiles every unrolled step, ~0.14 s per step and direction); "
                    f"set {SLOW_VARIANTS_ENV}=1 to run it")
        return super().variant_unavailable_reason(variant, device)

    def _extra_versions(self):
        import jaxlib

        return {"jaxlib": jaxlib.__version__}

    def devices(self):
        return jax_devices()

    def _make_runner(self, struct, handle, signature, probe):
        import jax

        use_compilation_cache()  # XLA's persistent cache (jax_cache.py)
        cfg, layers = handle.config, struct.layers
        if handle.stateful:
            # RNN state variables are created untracked (no automatic dependency tracking), so
            # stateless_call cannot carry them through jit: stateful layers run eagerly
            return self.eager_runner(struct, handle, probe)

        def pure(trainable, non_trainable, x, mask, init):
            probe.traced = True

            def call(index, layer, inputs, m, st):
                out, _ = layer.stateless_call(trainable[index], non_trainable[index], inputs,
                                              **self._call_kwargs(m, st))
                return out

            return self._chain(layers, cfg, x, mask, init, call)

        # one compile per input shape, reused across cases of the structure (weights are arguments)
        jitted = jax.jit(pure)

        def run(x, mask, init):
            trainable = [[v.value for v in layer.trainable_variables] for layer in layers]
            non_trainable = [[v.value for v in layer.non_trainable_variables] for layer in layers]
            return jitted(trainable, non_trainable, x, mask, init)

        return run

    def _block(self, outputs):
        import jax

        return jax.block_until_ready(outputs)

    def _precision(self, handle):
        return ieee_matmuls_jax(handle.device)


class KerasTorchAdapter(_Keras3Adapter):
    name = "keras-torch"
    backend = "torch"
    # float64 is a recorded finding (see above); only the unmasked fused path (_fallback_lstm, plain
    # torch.matmul) stays float64

    def devices(self):
        return torch_devices()

    def _make_runner(self, struct, handle, signature, probe):
        import torch

        chain = self.eager_runner(struct, handle, probe)

        def run(x, mask, init):
            with torch.no_grad():  # inference only: no autograd graph kept
                return chain(x, mask, init)

        return run

    def _fused_path_name(self, handle):
        return "cudnn" if handle.device == "gpu" else "fused"

    def _to_numpy(self, t):
        return t.detach().cpu().numpy()  # keras.ops.convert_to_numpy's np.array(t) warns under numpy 2

    def _block(self, outputs):
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return outputs

    def _precision(self, handle):
        return ieee_matmuls_torch(handle.device)
