"""A Keras 3 ``LSTM`` exported by Keras' own ``model.export(path, format="onnx")`` and run in ONNX Runtime's CPU
execution provider: backend names ``keras-torch-onnx`` (Keras on torch; the export goes through
``torch.onnx.export``), ``keras-tensorflow-onnx`` (Keras on TensorFlow; through tf2onnx, which turns the layer
into an ONNX ``LSTM`` node, so ONNX Runtime's LSTM kernel runs it) and ``keras-jax-onnx`` (Keras on JAX; through
jax2onnx, a ``Loop`` graph). ``tf-keras-onnx`` converts a tf-keras model with tf2onnx.

Keras documents ``format="onnx"`` for the TensorFlow, JAX and torch backends
(https://keras.io/api/models/model_saving_apis/export/). The model is a functional ``keras.Model`` around the case's layers
(the ``keras-torch`` adapter's, same weights conversion, LAYOUT-2) with the inputs the case feeds (``x``, a
``mask``, the initial states), called once on the case's input (export refuses a model never called) and
exported. Two variants, as users declare their inputs:
- ``dynamic``: ``keras.Input(shape=(None, input_dim))``, batch and time free, exported once per weights and
  inputs and run at every drawn batch size and length (the dynamic-axes check);
- ``static``: ``keras.Input(shape=(T, input_dim))`` at the case's length, exported per length.
``Output.kernel_path`` names the graph's recurrence: ``onnx:LSTM`` (an ONNX LSTM node), ``onnx:Loop``/``Scan``,
or ``onnx:unrolled`` (the steps traced one by one).

Not offered: float64 (ONNX Runtime's CPU LSTM and most of its float64 kernels), stateful layers, gradients,
dropout, defaults (they would check Keras, not the graph). ``param_count`` is the size of the graph's
floating-point initializers (keras-torch-onnx: the Keras count, PARAM-1), or of the ONNX LSTM nodes' W, R and
B (keras-tensorflow-onnx: the ONNX count with its 8u biases, PARAM-3). Exported files are handled as every exported path's (``exported.py``).
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path

import numpy as np

from .base import Unsupported
from .exported import InferenceOnlyExport, _first_line, export_folder
from .keras.base import KERAS_OPTIONS
from .keras.keras3 import KerasJaxAdapter, KerasTensorFlowAdapter, KerasTorchAdapter
from .keras.tf_keras import TfKerasAdapter

__all__ = ["KerasTorchOnnxAdapter", "KerasTensorFlowOnnxAdapter", "KerasJaxOnnxAdapter", "TfKerasOnnxAdapter"]


class _Exported:
    def __init__(self, owner, key, path: Path):
        import onnxruntime as ort

        self.owner, self.key, self.path = owner, key, path
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        import onnx

        model = onnx.load(str(path))
        ops = {n.op_type for n in model.graph.node}
        self.recurrence = "+".join(op for op in ("LSTM", "Loop", "Scan") if op in ops) or "unrolled"
        floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}
        sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type in floats}
        #: the graph's float constants; with ONNX LSTM nodes, only their W, R, B (and P) inputs: the ONNX
        #: convention's parameters (PARAM-3), without the exporter's other constants
        lstm_inputs = [name for n in model.graph.node if n.op_type == "LSTM"
                       for k, name in enumerate(n.input) if k in (1, 2, 3, 7)]
        self.params = sum(sizes.get(name, 0) for name in lstm_inputs) if lstm_inputs else sum(sizes.values())


class _KerasOnnxExport(InferenceOnlyExport):
    """What the ONNX-exported Keras backends share; mixed in before the backend's Keras adapter (the Keras 3
    capabilities; tf-keras-onnx declares its own)."""

    runtime = "ONNX Runtime"

    variants = ("dynamic", "static")
    exporter = "keras model.export(format='onnx')"
    capabilities = dataclasses.replace(KerasTorchAdapter.capabilities, dtypes=("float32",),
                                       options=KERAS_OPTIONS - {"stateful", "defaults"})
    #: a quarter of the profile's examples (3 of the ci profile's 12): every case is an export (0.3-5 s; five
    #: exported Keras envs share the CI's 90 minutes on 2 cores)
    examples_scale = 0.25

    def _extra_versions(self):
        import onnx
        import onnxruntime

        return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}

    def devices(self):
        return ["cpu"]

    def _variant_kwargs(self, variant):
        return {"dynamic": {}, "static": {}}[variant]  # the layer as users build it

    def variant_unavailable_reason(self, variant, device):
        return None if variant in self.variants else f"{self.name} has no variant {variant!r}"

    def build(self, config, weights, *, variant="dynamic", device="cpu", stateful=False):
        if stateful:
            raise Unsupported(f"{self.name}: an exported graph keeps no state between runs")
        return super().build(config, weights, variant=variant, device=device)

    # ---- export --------------------------------------------------------------------------------
    def _write_onnx(self, model, path: Path) -> None:
        """The exporter users call (Keras 3: ``model.export``)."""
        model.export(str(path), format="onnx", verbose=False)

    def _export(self, struct, handle, x, mask, init, key) -> _Exported:
        keras = self._keras()
        cfg = handle.config
        T = x.shape[1] if handle.variant == "static" else None
        xin = keras.Input(shape=(T, cfg.input_dim), dtype=cfg.dtype, name="x")
        inputs, sample = [xin], [x]
        m = None
        if mask is not None:
            m = keras.Input(shape=(T,), dtype="bool", name="mask")
            inputs.append(m)
            sample.append(mask)
        states = None
        if init is not None:
            states = [keras.Input(shape=(a.shape[1],), dtype=cfg.dtype, name=f"state{k}") for k, a in enumerate(init)]
            inputs += states
            sample += list(init)
        model = keras.Model(inputs, self._chain(struct.layers, cfg, xin, m, states, self._call_layer))
        folder = export_folder(self.name)
        path = folder.path / "model.onnx"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the exporters' deprecation and tracer warnings
                model(sample)  # Keras refuses to export a model never called
                self._write_onnx(model, path)
        except Exception as exc:  # the exporter's refusal, with its own words
            shutil.rmtree(folder.path, ignore_errors=True)
            raise Unsupported(f"{self.exporter} refuses: {type(exc).__name__}: {_first_line(exc)}") from exc
        exported = _Exported(struct.owner, key, path)
        folder.remove_with(exported)
        return exported

    def _make_runner(self, struct, handle, signature, probe):
        current: list[_Exported] = []  # the last export: one weights and input set at a time

        def run(x, mask, init):
            x = np.asarray(x)
            key = (x.shape[1] if handle.variant == "static" else None, mask is not None,
                   None if init is None else len(init))
            if not current or current[0].owner is not struct.owner or current[0].key != key:
                probe.traced = True  # the kernel path is read from this export
                current[:] = [self._export(struct, handle, x, mask, init, key)]
            exp = current[0]
            feed = [x] + ([np.asarray(mask)] if mask is not None else []) + [np.asarray(a) for a in init or []]
            self._last, self._recurrence = [exp.path], exp.recurrence
            return exp.session.run(None, dict(zip(exp.inputs, feed)))

        return run

    def _to_numpy(self, t):
        return np.asarray(t)

    def _kernel_path(self, handle, cell_ran):
        return f"onnx:{getattr(self, '_recurrence', '?')}"

    def _precision(self, handle):
        return "ieee"

    # ---- other API -----------------------------------------------------------------------------

    def param_count(self, handle):
        """The exported graph's float initializers, from an export on a batch-1, 2-step input."""
        struct = handle.structure
        if struct.owner is not handle:
            self._assign(struct, handle)
        x = np.zeros((1, 2, handle.config.input_dim), dtype=handle.config.dtype)
        exported = self._export(struct, handle, x, None, None, ("count",))
        self._last = [exported.path]
        if "Loop" in exported.recurrence or "Scan" in exported.recurrence:
            # a loop body's constants are the weights plus the exporter's own (tf2onnx where an activation has
            # no ONNX LSTM name, jax2onnx always: 130 for a 128-parameter layer), no parameter count
            raise Unsupported(f"{self.name}: the exporter wrote the layer as a {exported.recurrence} graph; its "
                              f"constants are not a parameter count")
        return exported.params


class KerasTorchOnnxAdapter(_KerasOnnxExport, KerasTorchAdapter):
    name = "keras-torch-onnx"
    framework = "keras (torch backend) -> model.export(format='onnx') -> onnxruntime"
    requires = ("keras", "torch", "onnx", "onnxruntime")


class KerasTensorFlowOnnxAdapter(_KerasOnnxExport, KerasTensorFlowAdapter):
    name = "keras-tensorflow-onnx"
    framework = "keras (tensorflow backend) -> model.export(format='onnx') (tf2onnx) -> onnxruntime"
    requires = ("keras", "tensorflow", "tf2onnx", "onnx", "onnxruntime")

    def _extra_versions(self):
        import tf2onnx

        return dict(super()._extra_versions(), tf2onnx=tf2onnx.__version__)

    def param_convention(self, config):
        return "onnx"  # tf2onnx turns the layer into ONNX LSTM nodes: W, R and the 8u bias B (PARAM-3)


class KerasJaxOnnxAdapter(_KerasOnnxExport, KerasJaxAdapter):
    """Keras on JAX exports through jax2onnx (Keras asks for it: "This requires the jax2onnx module")."""

    name = "keras-jax-onnx"
    framework = "keras (jax backend) -> model.export(format='onnx') (jax2onnx) -> onnxruntime"
    requires = ("keras", "jax", "jax2onnx", "onnx", "onnxruntime")
    # jax2onnx 0.17.1 refuses a reversed scan ("Reverse scan is not supported in IR pipeline"): declared here so
    # those draws are not made and refused one export at a time (each refusal cost an export attempt)
    capabilities = dataclasses.replace(_KerasOnnxExport.capabilities,
                                       options=_KerasOnnxExport.capabilities.options - {"go_backwards", "bidirectional"})

    def param_count_unsupported_reason(self, variant):
        return (f"{self.name}: jax2onnx writes the layer as a Loop graph, whose constants are the weights plus the "
                f"exporter's own (130 for a 128-parameter layer): no parameter count")

    def variant_options(self, variant):
        # a free time axis gives the mask its own symbolic length, which JAX's scan refuses ("scan got values with
        # different leading axis sizes: dim_0_1, dim_1_1"): the dynamic variant takes no mask
        return super().variant_options(variant) - ({"mask"} if variant == "dynamic" else set())

    def _extra_versions(self):
        from importlib.metadata import version

        return dict(super()._extra_versions(), jax2onnx=version("jax2onnx"))  # the module has no __version__


class TfKerasOnnxAdapter(_KerasOnnxExport, TfKerasAdapter):
    """tf-keras has no ONNX export of its own: its users convert with tf2onnx (``tf2onnx.convert.from_keras``,
    the input signature from the model's inputs: batch free, time free or the case's), which also turns the
    layer into ONNX ``LSTM`` nodes."""

    name = "tf-keras-onnx"
    framework = "tf-keras -> tf2onnx.convert.from_keras -> onnxruntime"
    exporter = "tf2onnx.convert.from_keras"
    requires = ("tensorflow", "tf_keras", "tf2onnx", "onnx", "onnxruntime")
    capabilities = dataclasses.replace(TfKerasAdapter.capabilities, dtypes=("float32",),
                                       options=KERAS_OPTIONS - {"stateful", "defaults"})

    def versions(self):
        if self._versions is None:
            import tf2onnx

            self._versions = dict(super().versions(), **self._extra_versions(), tf2onnx=tf2onnx.__version__)
        return self._versions

    def _write_onnx(self, model, path):
        import tensorflow as tf
        import tf2onnx

        signature = [tf.TensorSpec(t.shape, t.dtype, name=t.name.split(":")[0]) for t in model.inputs]
        tf2onnx.convert.from_keras(model, input_signature=signature, output_path=str(path))

    def param_convention(self, config):
        return "onnx"  # ONNX LSTM nodes: W, R and the 8u bias B (PARAM-3)
