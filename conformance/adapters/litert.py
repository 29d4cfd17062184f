"""A tf-keras ``LSTM`` converted by ``tf.lite.TFLiteConverter`` and run in the LiteRT interpreter
(``ai-edge-litert``): backend name ``tf-keras-litert``. This is how a Keras LSTM reaches phones.

The path users follow (TensorFlow's "TensorFlow RNN conversion to TensorFlow Lite" guide,
https://ai.google.dev/edge/litert/models/rnn): the model is called in a ``tf.function`` whose input shapes are
fixed, that concrete function is converted, and the converter replaces a fusable Keras LSTM (tanh/sigmoid,
no mask, no returned state) by the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op; any other LSTM becomes the
generic ops of its loop (``WHILE``). Two variants:
- ``converted``: one graph returning the outputs and the final states (what a model with ``return_state``
  converts to; the returned states keep it from being fused);
- ``fused``: the outputs from a graph that returns only them (a model without returned states, as most
  deployed models are: the converter fuses it where it can), the final states from the ``converted`` graph.
``Output.kernel_path`` names how each converted graph runs the recurrence (``litert:outputs
UNIDIRECTIONAL_SEQUENCE_LSTM; states WHILE``), so a report shows which path each check took.

Shapes: with a free time axis the converter refuses (TF 2.21: "'tf.TensorListReserve' op requires
element_shape to be static during TF Lite transformation pass"), and the fused op's state tensors keep the
export's batch (``resize_tensor_input`` to another batch fails in ``unidirectional_sequence_lstm.cc``:
"NumElements(output_state) != n_batch * n_output"), so every case is converted at its own batch and length:
one conversion per weights and input shape (about 1-7 s), cached while the case is reused.

The Keras layers are the ``tf-keras`` adapter's (same weights conversion, LAYOUT-2); what this adapter adds is the
conversion and the interpreter. Not offered: float64 (LiteRT's float kernels are float32), stateful layers (a
converted graph keeps no state between invocations), gradients and dropout (an inference runtime), the
defaults property (it would check tf-keras's initialisers, not the converted graph). ``param_count`` is the
number of float elements in the constant inputs of the fused LSTM ops (a skip where the converter fuses none).

A converted file goes to a temporary folder, removed when the conversion is dropped, unless
``LSTM_CONFORMANCE_KEEP_EXPORTS=DIR`` asks to keep every file there; a failing check keeps the file it ran
beside its repro blob (:meth:`artifacts`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .base import Unsupported
from .exported import InferenceOnlyExport, _first_line, export_folder
from .keras.base import KERAS_OPTIONS, PathProbe, keras_capabilities
from .keras.tf_keras import TfKerasAdapter

__all__ = ["TfKerasLiteRTAdapter"]


class _Converted:
    """One converted graph and its signature runner: inputs by name (``x``, ``mask``, ``state<k>``), outputs
    ``output_<k>`` in the order the converted function returned them."""

    def __init__(self, owner, key, flatbuffer: bytes, folder: Path):
        from ai_edge_litert.interpreter import Interpreter

        self.owner, self.key = owner, key
        self.path = folder / "lstm.tflite"
        self.path.write_bytes(flatbuffer)
        interpreter = Interpreter(model_path=str(self.path), num_threads=1)
        self.runner = interpreter.get_signature_runner()
        self.n_outputs = len(interpreter.get_output_details())
        self.ops = sorted({op["op_name"] for op in interpreter._get_ops_details()} - {"DELEGATE"})
        #: how the graph runs the recurrence (the kernel path): the fused ops, a WHILE loop, or neither
        self.recurrence = "+".join(op for op in (*_FUSED_OPS, "WHILE") if op in self.ops) or "unrolled"
        self.params = _fused_lstm_params(flatbuffer)

    def __call__(self, **inputs) -> list[np.ndarray]:
        # by the signature's names: the tensors' own names ("StatefulPartitionedCall:k") are not in that order
        out = self.runner(**{k: np.ascontiguousarray(v) for k, v in inputs.items()})
        return [np.array(out[f"output_{k}"]) for k in range(self.n_outputs)]


_FUSED_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM")


def _fused_lstm_params(flatbuffer: bytes) -> int | None:
    """Float elements of the constant inputs (weights, peepholes, biases, projection) of the graph's fused LSTM
    ops, or None when the converter fused none (a loop's other constants are not the layer's parameters)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    fused = {getattr(schema.BuiltinOperator, name) for name in _FUSED_OPS}
    floats = {schema.TensorType.FLOAT32, schema.TensorType.FLOAT16, schema.TensorType.FLOAT64}
    total, found = 0, False
    for s in range(model.SubgraphsLength()):
        graph = model.Subgraphs(s)
        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            code = model.OperatorCodes(op.OpcodeIndex())
            if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) not in fused:
                continue
            found = True
            for t in op.InputsAsNumpy():
                if t < 0:  # an optional input left out (no peepholes, no projection)
                    continue
                tensor = graph.Tensors(int(t))
                if tensor.Type() in floats and model.Buffers(tensor.Buffer()).DataLength() > 0:
                    total += int(np.prod(tensor.ShapeAsNumpy()))
    return total if found else None


class TfKerasLiteRTAdapter(InferenceOnlyExport, TfKerasAdapter):
    name = "tf-keras-litert"
    runtime, graph, per_case = "the LiteRT interpreter", "a converted graph", "a conversion"
    framework = "tf-keras -> TFLiteConverter -> LiteRT"
    variants = ("converted", "fused")
    requires = ("tensorflow", "tf_keras", "ai_edge_litert")
    capabilities = dataclasses.replace(keras_capabilities("hard_sigmoid_keras2"), dtypes=("float32",),
                                       options=KERAS_OPTIONS - {"stateful", "defaults"})
    #: a tenth of the profile's examples (1 of the ci profile's 12, 1 of dev's 10): every case is one conversion
    #: (two for ``fused``) of 1-7 s, up to ~30 s for a bidirectional stack on a loaded 2-core machine, and the CI
    #: runs every backend env in 90 minutes on 2 cores
    examples_scale = 0.1

    def versions(self):
        if self._versions is None:
            import ai_edge_litert

            self._versions = dict(super().versions(), ai_edge_litert=getattr(ai_edge_litert, "__version__", "?"))
        return self._versions

    def devices(self):
        return ["cpu"]

    def _variant_kwargs(self, variant):
        return {"converted": {}, "fused": {}}[variant]  # the layer as users build it: implementation 2, not unrolled

    def build(self, config, weights, *, variant="converted", device="cpu", stateful=False):
        if stateful:
            raise Unsupported(f"{self.name}: a converted graph keeps no state between invocations")
        return super().build(config, weights, variant=variant, device=device)

    # ---- conversion ----------------------------------------------------------------------------
    def _convert(self, struct, handle, chain, x, mask, init, key=None) -> _Converted:
        import tensorflow as tf

        dt = tf.as_dtype(handle.config.dtype)
        specs = [tf.TensorSpec(x.shape, dt, name="x")]
        if mask is not None:
            specs.append(tf.TensorSpec(mask.shape, tf.bool, name="mask"))
        specs += [tf.TensorSpec(a.shape, dt, name=f"state{k}") for k, a in enumerate(init or [])]

        def fn(*args):
            rest = list(args[1:])
            m = rest.pop(0) if mask is not None else None
            return chain(args[0], m, rest if init is not None else None)

        holder = tf.Module()
        holder.layers = struct.layers  # the variables the converter freezes into the graph
        try:
            concrete = tf.function(fn, input_signature=specs, autograph=False).get_concrete_function()
            flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder).convert()
        except Exception as exc:  # the converter's refusal, with its own words
            raise Unsupported(f"TFLiteConverter refuses: {type(exc).__name__}: {_first_line(exc)}") from exc
        folder = export_folder(self.name)
        converted = _Converted(struct.owner, key, flatbuffer, folder.path)
        folder.remove_with(converted)
        return converted

    def _make_runner(self, struct, handle, signature, probe):
        chain = self.eager_runner(struct, handle, probe)
        n_out = 2 if handle.config.effective_merge_mode == "none" else 1
        # 'fused': the outputs come from a graph returning only them, as a model without returned states is
        # converted (the converter fuses what it can); the states from the graph that returns them too
        parts = {"all": chain}
        if handle.variant == "fused":
            parts["outputs"] = lambda x, mask, init: chain(x, mask, init)[:n_out]
        current: dict[str, _Converted] = {}  # the last conversion per part: one weights and shape at a time

        def invoke(part, x, mask, init):
            key = (x.shape, None if mask is None else mask.shape, None if init is None else len(init))
            conv = current.get(part)
            if conv is None or conv.owner is not struct.owner or conv.key != key:
                conv = current[part] = self._convert(struct, handle, parts[part], x, mask, init, key)
            feed = {"x": x, **({"mask": mask} if mask is not None else {}),
                    **{f"state{k}": a for k, a in enumerate(init or [])}}
            return conv(**feed), conv

        def run(x, mask, init):
            flat, conv = invoke("all", x, mask, init)
            self._last, self._last_ops = [conv.path], [f"{'states ' if len(parts) > 1 else ''}{conv.recurrence}"]
            if len(parts) > 1:
                outs, conv = invoke("outputs", x, mask, init)
                flat = outs + flat[n_out:]
                self._last.insert(0, conv.path)
                self._last_ops.insert(0, f"outputs {conv.recurrence}")
            return flat

        return run

    def _to_numpy(self, t):
        return np.asarray(t)

    def _kernel_path(self, handle, cell_ran):
        return "litert:" + ("; ".join(getattr(self, "_last_ops", ())) or "?")

    def _precision(self, handle):
        return "ieee"  # LiteRT's float32 CPU kernels (XNNPACK or reference); no reduced-precision matmul mode

    # ---- other API -----------------------------------------------------------------------------

    def param_count(self, handle):
        """Float elements of the fused LSTM ops' constant inputs in the graph a model without returned states
        converts to (batch 1, 2 steps); Unsupported where the converter fuses nothing (its loop's constants
        include the converter's own, so they are no parameter count)."""
        struct = handle.structure
        if struct.owner is not handle:
            self._assign(struct, handle)
        chain = self.eager_runner(struct, handle, PathProbe())
        n_out = 2 if handle.config.effective_merge_mode == "none" else 1
        x = np.zeros((1, 2, handle.config.input_dim), dtype=handle.config.dtype)
        converted = self._convert(struct, handle, lambda *a: chain(*a)[:n_out], x, None, None)
        self._last = [converted.path]
        if converted.params is None:
            raise Unsupported(f"{self.name}: the converter fused no LSTM op for this config (ops: "
                              f"{', '.join(converted.ops)}); a loop's constants are not a parameter count")
        return converted.params
