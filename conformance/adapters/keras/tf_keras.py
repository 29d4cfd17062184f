"""tf-keras (the Keras 2 API, package ``tf_keras``) ``LSTM`` on TensorFlow: backend name ``tf-keras``.

Imported directly as ``tf_keras`` (what ``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras`` point to), so it runs in
the same process as Keras 3. Differences from Keras 3 that matter here (tf-keras 2.21):
  - ``hard_sigmoid`` is ``clip(0.2x + 0.5, 0, 1)`` (ACT-3), not Keras 3's ``relu6(x + 3) / 6``.
  - stateful layers: a stored non-zero state wins over an explicit ``initial_state`` (``base_rnn.py`` and
    ``lstm.py`` check ``count_nonzero(self.states)``), where Keras 3 lets the explicit state override.
  - ``initial_state`` must be tensors, not numpy arrays.
Variants: ``impl2`` (the default, fused gates), ``impl1`` (one matmul per gate), ``unroll``. With tanh/sigmoid,
use_bias and no unroll the layer ignores ``implementation`` and runs its own ``standard_lstm`` function
(``cudnn`` on a GPU, picked by grappler); otherwise the ``LSTMCell`` step loop runs (``generic``), where
``implementation`` applies. ``Output.kernel_path`` reports which, from the layer's ``_could_use_gpu_kernel``.
"""

from __future__ import annotations

from ..shared import ieee_matmuls_tf
from .base import KerasAdapterBase, keras_capabilities
from .tf_runner import tf_devices, tf_runner

__all__ = ["TfKerasAdapter"]


class TfKerasAdapter(KerasAdapterBase):
    name = "tf-keras"
    capabilities = keras_capabilities("hard_sigmoid_keras2")
    variants = ("impl2", "impl1", "unroll", "rnn-cell", "stacked-cells")
    requires = ("tensorflow", "tf_keras")
    supported = {"tf_keras": ">=2.16.0"}  # 2.16.0 (tensorflow 2.16.2) to 2.21.0 run
    #: tf_runner: eager time steps before a structure's chain is traced (an eager step ~2.5 ms against a
    #: trace ~500 ms per layer-direction, measured in CPU time, TF 2.21 on 2 cores)
    eager_step_budget = 160

    # ---- environment -------------------------------------------------------------------------
    def _keras(self):
        import tf_keras

        return tf_keras

    def versions(self):
        if self._versions is None:
            import tensorflow as tf
            import tf_keras

            self._versions = {"tf_keras": tf_keras.__version__, "tensorflow": tf.__version__}
        return self._versions

    def devices(self):
        return tf_devices()

    def _device_scope(self, device):
        import tensorflow as tf

        return tf.device("/GPU:0" if device == "gpu" else "/CPU:0")

    # ---- variants ------------------------------------------------------------------------------
    def _variant_kwargs(self, variant):
        return {"impl2": {"implementation": 2}, "impl1": {"implementation": 1},
                "unroll": {"unroll": True}, "rnn-cell": {}, "stacked-cells": {}}[variant]

    # ---- running -------------------------------------------------------------------------------
    def _make_runner(self, struct, handle, signature, probe):
        return tf_runner(self, struct, handle, signature, probe, eager=handle.variant == "unroll")

    def _to_numpy(self, t):
        return t.numpy()

    def _variable_to_numpy(self, v):
        return v.numpy()

    def _to_tensor(self, x):
        import tensorflow as tf

        return tf.convert_to_tensor(x)

    def _reset(self, layer):
        layer.reset_states()

    def _install_probe(self, layer, probe):
        pass  # the path is read from the layer's own attribute (see _kernel_path)

    def _kernel_path(self, handle, cell_ran):
        layer = handle.structure.layers[0]
        lstm = self._lstms(layer)[0]
        if not getattr(lstm, "_could_use_gpu_kernel", False):  # RNN(LSTMCell) has no fused kernel
            return "generic-unrolled" if handle.variant == "unroll" else "generic"
        # tf-keras swaps standard_lstm for cudnn_lstm by grappler where a GPU takes the inputs
        return "cudnn" if handle.device == "gpu" else "standard_lstm"

    def _precision(self, handle):
        return ieee_matmuls_tf(handle.device)
