"""The ``onnxruntime`` adapter: one ONNX ``LSTM`` node (opset 14, built with ``onnx.helper``) run by ONNX
Runtime's CPU execution provider.

How the ONNX op maps onto the canonical API (FACTS "ONNX", spec/layouts.md LAYOUT-4):
- weights through ``reference.layouts.to_onnx`` only: ``W (D, 4H, I)``, ``R``, ``B (D, 8H) = [Wb, Rb]``,
  ``P (D, 3H)``, gate order i, o, f, c; two biases, so ``bias_mode='double'`` is native.
- ``direction='reverse'`` is go_backwards: ONNX returns Y in *original* time order, the spec's DIR-2 wants
  processing order, so the adapter flips Y (a layout change). ``direction='bidirectional'``: index 0 is
  forward, the backward half in original order (BIDI-1); merge 'concat' / 'none' are layouts of Y, while
  sum/mul/ave would be arithmetic in the adapter and are not offered.
- ``sequence_lens`` is right-padded ``lengths``; ORT zero-fills Y past each length (MASK-2 'zero').
- ``activations`` (f, g, h) with ``activation_alpha``/``activation_beta`` consumed in order by the functions
  that take them; the reference has one ``activation`` for g and h.
- ONNX Runtime 1.32's CPU LSTM runs float32 only ("LSTM operator does not support double yet") and layout 0
  only ("Batchwise recurrent operations (layout == 1) are not supported"), so X is time-major (T, B, I).

Variants: ``initializers`` (weights are constant initializers, as in an exported model; ORT may prepack
them), ``inputs`` (weights fed at run time; one session per structure, reused) and ``layout1`` (the node with
``layout=1``: X ``(B, T, I)``, initial and final states ``(B, D, H)``, Y ``(B, T, D, H)``, weights as
initializers). Before any check of ``layout1`` the installed runtime is asked once, on a one-unit node; a
runtime that refuses it (ORT 1.32: the message above) makes every ``layout1`` check a skip carrying the
runtime's own words, and one that runs it gets every check.

Speed: a session costs ~1-10 ms to build against ~0.1-1 ms to run a small case. ``inputs`` builds one per
structure (batch and time symbolic) and feeds the weights. ``initializers`` cannot share a session between
weights (they are constants of the graph, which is what the variant checks), so its sessions are kept by
structure *and* weight content: hypothesis replays and shrink steps that keep the weights reuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hashlib

import numpy as np

from reference import Config, Weights
from reference.weights import LayerWeights
from reference.activations import parse_activation
from reference.layouts import to_onnx

from .base import Adapter, Capabilities, Output, Unsupported, canonical_output
from .shared import LayerCache, layer_major, lengths_from_mask, per_layer

OPSET = 14  # LSTM-14: the current LSTM (adds `layout`)
_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
_WEIGHTS = ("W", "R", "B", "P")
_VARIANTS = ("initializers", "inputs", "layout1")
_CACHE_SIZE = 32  # sessions kept per adapter and variant (one per structure, optional-input set, and for
#                   the initializers variant weight content)

#: ONNX activation names -> the registry function each computes (ACT-30); HardSigmoid is the ONNX one
#: (alpha 0.2, beta 0.5), not either Keras hard_sigmoid.
ONNX_ACTIVATIONS = {
    "Sigmoid": "sigmoid", "Tanh": "tanh", "Relu": "relu", "HardSigmoid": "onnx_hard_sigmoid",
    "Affine": "onnx_affine", "LeakyRelu": "onnx_leaky_relu", "ThresholdedRelu": "onnx_thresholded_relu",
    "ScaledTanh": "onnx_scaled_tanh", "Elu": "onnx_elu", "Softsign": "softsign", "Softplus": "softplus",
}


@dataclass
class _Handle:
    config: Config
    variant: str
    weights: dict[str, np.ndarray]  # to_onnx tensors in the config dtype
    #: initializers variant: the weights' content digest, part of its session key
    digest: str = ""


class OnnxRuntimeAdapter(Adapter):
    name = "onnxruntime"
    exercises = ("LAYOUT-4",)
    framework = "onnxruntime"
    variants = _VARIANTS
    requires = ("onnx", "onnxruntime")
    supported = {"onnxruntime": ">=1.16.0"}  # 1.16.0 (onnx 1.15.0) to 1.32.0 run
    capabilities = Capabilities(
        options=frozenset({"return_sequences", "return_state", "go_backwards", "bidirectional", "peepholes",
                           "cell_clip", "input_forget", "use_bias=False", "initial_state", "lengths"}),
        activations=ONNX_ACTIVATIONS,
        dtypes=("float32",),  # ORT 1.32 CPU: "LSTM operator does not support double yet"
        merge_modes=("concat", "none"),
        bias_modes=("single", "double"),
        param_convention="onnx",
        max_layers=1,  # one node is one layer; a stack is a graph of nodes, not the op under test
        arbitrary_masks=False,  # sequence_lens expresses right padding only
        fully_masked_rows=True,  # sequence_lens may be 0
    )

    def __init__(self) -> None:
        self._sessions = {v: LayerCache(_CACHE_SIZE) for v in _VARIANTS}
        # per config (frozen, hashable): the support answer and the node's structure key, asked on every
        # build and call; computing them (a Config.replace, activation parsing) cost more than ORT's run
        self._support: dict[tuple, str | None] = {}
        self._structures: dict[Config, tuple] = {}

    # ---- environment -------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        import onnx
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}

    # ---- per-case support ---------------------------------------------------------------------
    def variant_unavailable_reason(self, variant: str, device: str) -> str | None:
        if variant == "layout1":
            if not hasattr(self, "_layout1"):
                self._layout1 = None  # the probe builds through this check
                self._layout1 = self._probe_layout1()
                self._support.clear()  # the probe's own config was answered before the probe knew
            if self._layout1:
                return self._layout1
        return super().variant_unavailable_reason(variant, device)

    def _probe_layout1(self) -> str | None:
        """The runtime's own refusal of ``layout=1`` on a one-unit node, or None when it runs it."""
        import onnxruntime

        cfg = Config(input_dim=1, units=1, return_sequences=True, return_state=True, dtype="float32")
        weights = Weights([[LayerWeights(W=np.zeros((4, 1, 1)), U=np.zeros((4, 1, 1)), b=np.zeros((4, 1)))]])
        try:
            self.forward(self.build(cfg, weights, variant="layout1"), np.zeros((1, 2, 1)))
        except Exception as exc:  # noqa: BLE001 - whatever the runtime raises is its answer; ours is a bug
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1].strip()
            return f"onnxruntime {onnxruntime.__version__} refuses layout=1: {first}"
        return None
    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        return ("zero",)  # MASK-2: ORT zero-fills Y past each sequence length

    def unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        key = (config, variant, device)
        if key not in self._support:
            if len(self._support) > 4096:
                self._support.clear()
            self._support[key] = self._unsupported_reason(config, variant, device)
        return self._support[key]

    def _unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        reason = self.variant_unavailable_reason(variant, device)
        if reason:
            return reason
        # The base check refuses parameterised activations; ONNX expresses their alpha/beta, so only the
        # names are checked here and the rest of the config by the base with plain activations.
        for act in (config.act, config.recurrent_act):
            if act.name not in self.capabilities.activations.values():
                return f"{self.name} has no activation computing {act}"
        return super().unsupported_reason(config.replace(activation="tanh", recurrent_activation="sigmoid"),
                                          variant, device)

    # ---- graph building -------------------------------------------------------------------------
    def _attributes(self, config: Config, layout: int = 0) -> dict:
        attrs: dict[str, Any] = {"hidden_size": config.units}
        if layout:
            attrs["layout"] = layout  # LSTM-14: batch-major X, Y, initial and final states
        attrs["direction"] = ("bidirectional" if config.bidirectional else "reverse" if config.go_backwards
                              else "forward")
        acts = [config.recurrent_act, config.act, config.act]  # f, g, h (ONNX); g and h share `activation`
        if [a.name for a in acts] != ["sigmoid", "tanh", "tanh"]:
            fw = self.capabilities.registry_to_framework
            attrs["activations"] = [fw(a.name) for a in acts] * config.num_directions
            # alpha/beta are given only when a value differs from the registry's (ONNX operator) default,
            # so the defaulting of the runtime is what is checked (ACT-20, ACT-22); consumed in order by the
            # functions that take them (ACT-30 'per-function'), alpha the first parameter, beta the second.
            # ScaledTanh has no default in the operator text (ACT-23): its parameters are always written.
            if any(a.params != parse_activation(a.name).params or a.name == "onnx_scaled_tanh" for a in acts):
                alphas = [a.params[0][1] for a in acts if len(a.params) >= 1]
                betas = [a.params[1][1] for a in acts if len(a.params) >= 2]
                if alphas:
                    attrs["activation_alpha"] = alphas * config.num_directions
                if betas:
                    attrs["activation_beta"] = betas * config.num_directions
        if config.cell_clip is not None:
            attrs["clip"] = float(config.cell_clip)
        if config.input_forget:
            attrs["input_forget"] = 1
        return attrs

    def _model(self, config: Config, shapes: dict[str, tuple], initializers: dict[str, np.ndarray], layout: int = 0):
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        names = [n if n in shapes else "" for n in _INPUTS]
        while names[-1] == "":
            names.pop()
        node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], **self._attributes(config, layout))
        elem = helper.np_dtype_to_tensor_dtype(np.dtype(config.dtype))
        graph_inputs = [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else elem, shapes[n])
                        for n in names if n and n not in initializers]
        outputs = [helper.make_tensor_value_info(n, elem, [None] * rank)
                   for n, rank in (("Y", 4), ("Y_h", 3), ("Y_c", 3))]
        inits = [numpy_helper.from_array(v, n) for n, v in initializers.items()]
        model = helper.make_model(helper.make_graph([node], "lstm", graph_inputs, outputs, initializer=inits),
                                  opset_imports=[helper.make_opsetid("", OPSET)])
        onnx.checker.check_model(model)
        return model

    def _session(self, handle: _Handle, feed_shapes: dict[str, tuple]):
        cfg = handle.config
        optional = tuple(sorted(n for n in ("sequence_lens", "initial_h", "initial_c") if n in feed_shapes))
        # batch and time are left symbolic so one session serves every case of this structure
        structure = self._structures.get(cfg)
        if structure is None:
            if len(self._structures) > 4096:
                self._structures.clear()
            structure = self._structures[cfg] = (repr(sorted(self._attributes(cfg).items())), cfg.dtype,
                                                 cfg.input_dim, cfg.use_bias, cfg.peepholes)
        cache, key, inits = self._sessions[handle.variant], (structure, optional), {}
        if handle.variant in ("initializers", "layout1"):
            key, inits = key + (handle.digest,), handle.weights
        session = cache.get(key)
        if session is None:
            session = cache.put(key, self._new_session(self._model_bytes(handle, feed_shapes, inits)))
        return session

    def _model_bytes(self, handle: _Handle, feed_shapes: dict[str, tuple], initializers: dict) -> bytes:
        shapes = {**feed_shapes, **{n: v.shape for n, v in handle.weights.items()}}
        layout = int(handle.variant == "layout1")
        return self._model(handle.config, shapes, initializers, layout=layout).SerializeToString()

    @staticmethod
    def _new_session(model: bytes):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # the suite's small cases: threads cost more than they save
        opts.log_severity_level = 3
        return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    # ---- running ------------------------------------------------------------------------------
    def build(self, config: Config, weights: Weights, *, variant: str = "initializers", device: str = "cpu",
              stateful: bool = False) -> _Handle:
        if stateful:
            raise Unsupported(f"{self.name}: an ONNX LSTM node keeps no state between runs")
        self.require_supported(config, variant, device)
        tensors = {k: np.ascontiguousarray(v.astype(config.dtype)) for k, v in to_onnx(weights, config).items()}
        digest = ""
        if variant in ("initializers", "layout1"):
            h = hashlib.sha1()
            for k, v in sorted(tensors.items()):
                h.update(f"{k}{v.shape}".encode())
                h.update(v.tobytes())
            digest = h.hexdigest()
        return _Handle(config, variant, tensors, digest)  # LAYOUT-4

    def _feed_x(self, handle: _Handle, x: np.ndarray) -> np.ndarray:
        if handle.variant == "layout1":
            return np.ascontiguousarray(x.astype(handle.config.dtype))  # layout 1: (B, T, I)
        return np.ascontiguousarray(x.transpose(1, 0, 2).astype(handle.config.dtype))  # layout 0: (T, B, I)

    def bare_forward(self, handle: _Handle, x: np.ndarray):
        """bench/: the runtime's own work for one case on X already in ONNX's layout. ``inputs``:
        ``session.run`` alone, the weights fed as the adapter feeds them, the session built outside the timed
        calls. ``initializers`` and ``layout1``: the weights are constants of the graph, so a new weight set is
        a new model: the session created from the serialized model, then run (what that path costs a user)."""
        shapes = {"X": ("B", "T", handle.config.input_dim) if handle.variant == "layout1" else
                  ("T", "B", handle.config.input_dim)}
        feed = {"X": self._feed_x(handle, x)}
        if handle.variant == "inputs":
            session = self._session(handle, shapes)
            feed.update(handle.weights)
            return lambda: session.run(None, feed)
        model = self._model_bytes(handle, shapes, handle.weights)
        return lambda: self._new_session(model).run(None, feed)

    def forward(self, handle: _Handle, x: np.ndarray, *, mask: np.ndarray | None = None, initial_state=None,
                masked_output: str = "zero") -> Output:
        cfg = handle.config
        D = cfg.num_directions
        feed: dict[str, np.ndarray] = {"X": self._feed_x(handle, x)}
        if mask is not None:
            lengths = lengths_from_mask(self.name, mask, masked_output, via="sequence_lens")
            feed["sequence_lens"] = lengths.astype(np.int32)
        batch_major = handle.variant == "layout1"
        if initial_state is not None:
            # STATE-1: one layer; (D, B, H), index 0 forward; layout 1: (B, D, H)
            h0, c0 = (np.stack(s).astype(cfg.dtype) for s in layer_major(initial_state))
            feed["initial_h"], feed["initial_c"] = (h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)) if batch_major \
                else (h0, c0)
        shapes = {"X": ("T", "B", cfg.input_dim), "sequence_lens": ("B",), "initial_h": (D, "B", cfg.units),
                  "initial_c": (D, "B", cfg.units)}
        if batch_major:
            shapes.update(X=("B", "T", cfg.input_dim), initial_h=("B", D, cfg.units), initial_c=("B", D, cfg.units))
        session = self._session(handle, {n: shapes[n] for n in feed})
        if handle.variant == "inputs":
            feed.update(handle.weights)
        Y, Yh, Yc = session.run(None, feed)  # Y (T, D, B, H) in original time order per direction
        if batch_major:  # layout 1: Y (B, T, D, H), Y_h and Y_c (B, D, H)
            Y, Yh, Yc = Y.transpose(1, 2, 0, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
        seqs = [Y[:, d].transpose(1, 0, 2) for d in range(D)]
        if cfg.go_backwards:
            seqs[0] = seqs[0][:, ::-1]  # DIR-2: ONNX 'reverse' returns original order; the spec, processing order
        output = canonical_output(cfg, *seqs)
        kernel_path = "cpu:fed-weights" if handle.variant == "inputs" else "cpu:const-weights"
        return Output(output=output, h=per_layer(Yh, 1, D), c=per_layer(Yc, 1, D), kernel_path=kernel_path)

    def param_count(self, handle: _Handle) -> int:
        """ONNX reports no count: the sizes of the node's weight tensors as the model holds them
        (W, R, and B and P where present)."""
        return int(sum(v.size for n, v in handle.weights.items() if n in _WEIGHTS))
