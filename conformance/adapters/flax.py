"""The ``flax`` adapter: Flax's LSTM cells scanned by ``RNN``, composed as Flax users compose them.

What Flax offers and how it maps onto the canonical API (spec/layouts.md LAYOUT-5, spec/parameters.md PARAM-4):
- a cell (``LSTMCell`` or ``OptimizedLSTMCell``) is one step; ``RNN(cell)`` scans it over time, returning the
  final carry with ``return_carry=True``. The carry is ``(c, h)`` (LAYOUT-5), swapped to the canonical
  ``(h, c)`` here and for ``initial_carry``.
- weights go through ``reference.layouts`` only: the per-gate Dense layers ``ii, if, ig, io`` / ``hi, hf, hg,
  ho`` with ``to_flax`` (nnx spells the attribute ``if_``: ``if`` is a Python keyword); nnx's fused
  ``OptimizedLSTMCell`` (``dense_i (d, 4H)``, ``dense_h (H, 4H)`` with bias) is LAYOUT-2's Keras layout, so
  ``to_keras``. One bias on the hidden side, always present: no ``use_bias=False``, no second bias.
- ``go_backwards`` is ``RNN(reverse=True)``: without lengths ``keep_order=False`` returns processing order
  (DIR-2) as it is; with lengths ``keep_order=True`` returns original order and the adapter flips the whole
  time axis (a layout change), since Flax's reversed processing order keeps the padding at the end while
  DIR-2's puts it first.
- ``bidirectional`` is ``Bidirectional(RNN, RNN)`` (the backward one called with ``reverse=True,
  keep_order=True``); merge 'concat' is its default ``merge_fn``, 'none' a ``merge_fn`` returning the pair.
- ``num_layers`` is a chain of RNN / Bidirectional layers, each given the same ``seq_lengths``.
- masks: right-padded only, as ``seq_lengths`` (each >= 1: a length of 0 selects the carry at index -1, the
  last padded step). Flax's docs: "The output elements corresponding to padding elements are NOT zeroed
  out" — Flax defines no output there (MASK-2), so the adapter writes zeros past each length, as its users
  must, and compares under rule 'zero'; the padded positions are the adapter's, the valid ones and the
  final carry ("the state of the last valid element") Flax's.
- activations: ``gate_fn`` / ``activation_fn`` take any callable: the ``jax.nn`` functions below (ACT-30).

Variants (same math, separately recorded): ``nnx`` (``flax.nnx.LSTMCell``), ``nnx-optimized`` (its fused
kernels), ``linen`` (``flax.linen.LSTMCell``), ``linen-optimized`` (LSTMCell's parameters, gates in one matmul).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reference import Config, Weights
from reference.layouts import from_flax, from_keras, to_flax, to_keras

from .base import Adapter, Capabilities, GradientOutput, Output, Unsupported, canonical_output
from .jax_cache import use_compilation_cache
from .shared import LayerCache, ieee_matmuls_jax, jax_devices, lengths_from_mask

_VARIANTS = ("nnx", "nnx-optimized", "linen", "linen-optimized")
_CACHE_SIZE = 32  # structures kept (module templates and their jitted runners)

#: jax.nn names -> the registry function each computes (ACT-30). jax.nn.hard_sigmoid is relu6(x + 3) / 6
#: (Keras 3's), jax.nn.gelu defaults to approximate=True (the tanh form).
FLAX_ACTIVATIONS = {
    "sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "hard_sigmoid": "hard_sigmoid_keras3",
    "soft_sign": "softsign", "softplus": "softplus", "silu": "silu", "gelu": "gelu_tanh", "selu": "selu",
}


@dataclass
class _Handle:
    config: Config
    variant: str
    device: str
    runner: Any  # (params, x, seq_lengths, carries) -> (outputs per direction, carries), jitted per structure
    params: list  # per layer: the layer's parameter pytree in the config dtype
    size: int  # parameter count as the framework holds it (leaf sizes)


class FlaxAdapter(Adapter):
    name = "flax"
    framework = "flax"
    exercises = ("LAYOUT-5",)
    variants = _VARIANTS
    requires = ("jax", "flax")
    capabilities = Capabilities(
        options=frozenset({"return_sequences", "return_state", "go_backwards", "bidirectional", "num_layers",
                           "initial_state", "lengths"}),
        activations=FLAX_ACTIVATIONS,
        dtypes=("float32", "float64"),
        merge_modes=("concat", "none"),
        bias_modes=("single",),
        param_convention="flax",
        max_layers=4,
        arbitrary_masks=False,  # seq_lengths expresses right padding only
        fully_masked_rows=False,  # a length of 0 selects the carry at index -1 (the last padded step)
    )

    def __init__(self) -> None:
        self._structures = LayerCache(_CACHE_SIZE)

    # ---- environment -------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        import flax
        import jax
        import jaxlib

        return {"flax": flax.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__}

    devices = staticmethod(jax_devices)

    # ---- per-case support ---------------------------------------------------------------------
    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        return ("zero",)  # Flax defines no output past a length; the adapter zero-fills (module docstring)

    def unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        reason = self.variant_unavailable_reason(variant, device)
        if reason:
            return reason
        if not config.use_bias:
            return f"{self.name}: the hidden-side Dense layers always carry a bias (LAYOUT-5; no use_bias=False)"
        return super().unsupported_reason(config, variant, device)

    # ---- building -----------------------------------------------------------------------------
    def _cell_params(self, config: Config, weights: Weights, variant: str, layer: int, direction: int) -> dict:
        if variant == "nnx-optimized":
            k = to_keras(weights, config)[layer][direction]  # LAYOUT-5: the fused kernels are LAYOUT-2's
            return {"dense_i": {"kernel": k["kernel"]},
                    "dense_h": {"kernel": k["recurrent_kernel"], "bias": k["bias"]}}
        cell = to_flax(weights, config, layer, direction)  # LAYOUT-5
        # nnx.LSTMCell's attribute for to_flax's ``if`` is ``if_`` (``if`` is a Python keyword)
        return {("if_" if k == "if" and variant == "nnx" else k): v for k, v in cell.items()}

    def _layer_params(self, config: Config, weights: Weights, variant: str, layer: int) -> dict:
        cells = [self._cell_params(config, weights, variant, layer, d) for d in range(config.num_directions)]
        if config.bidirectional:
            return {"forward_rnn": {"cell": cells[0]}, "backward_rnn": {"cell": cells[1]}}
        return {"cell": cells[0]}

    def build(self, config: Config, weights: Weights, *, variant: str = "nnx", device: str = "cpu",
              stateful: bool = False) -> _Handle:
        import jax

        if stateful:
            raise Unsupported(f"{self.name}: RNN keeps no state between calls; the caller carries the carry")
        self.require_supported(config, variant, device)
        if config.dtype == "float64":
            jax.config.update("jax_enable_x64", True)  # otherwise every float64 array is made float32
        ieee_matmuls_jax(device)  # NUM-3
        use_compilation_cache(default_on=False)  # XLA's persistent cache where asked for (jax_cache.py)
        runner, template = self._structure(config, variant)
        params = []
        for l in range(config.num_layers):
            # numpy leaves: the jitted call moves them to the device in one go (a jnp.asarray per leaf is an
            # eager conversion op each, ~0.1 ms, most of a small case's time)
            tree = jax.tree_util.tree_map(lambda a: np.asarray(a, dtype=config.dtype),
                                          self._layer_params(config, weights, variant, l))
            if jax.tree_util.tree_structure(tree) != jax.tree_util.tree_structure(template[l]):
                raise ValueError(f"layouts gave {jax.tree_util.tree_structure(tree)}, the Flax layer has "
                                 f"{jax.tree_util.tree_structure(template[l])}")
            params.append(tree)
        size = int(sum(a.size for t in template for a in jax.tree_util.tree_leaves(t)))
        return _Handle(config, variant, device, runner, params, size)

    def _structure(self, config: Config, variant: str):
        key = (config.input_dim, config.units, config.num_layers, config.bidirectional, config.go_backwards,
               config.effective_merge_mode if config.bidirectional else None, config.activation,
               config.recurrent_activation, config.dtype, variant)
        entry = self._structures.get(key)
        if entry is None:
            builder = _nnx_structure if variant.startswith("nnx") else _linen_structure
            fw = self.capabilities.registry_to_framework
            entry = self._structures.put(key, builder(config, variant, fw(config.activation),
                                                      fw(config.recurrent_activation)))
        return entry

    # ---- running ------------------------------------------------------------------------------
    def _call_arguments(self, cfg: Config, mask, initial_state, masked_output):
        """(lengths or None, seq_lengths for Flax or None, carries [layer][direction] = (c, h) or None)."""
        lengths = None
        if mask is not None:
            lengths = lengths_from_mask(self.name, mask, masked_output, via="seq_lengths")
            if lengths.min() < 1:
                raise Unsupported(f"{self.name}: a seq_lengths of 0 selects the last padded step's carry")
            if cfg.go_backwards and cfg.num_layers > 1:
                # STACK-1 chains processing-order sequences under the original mask (Keras); a stack of
                # reversed RNNs given seq_lengths keeps each layer's padding at the end: another model
                raise Unsupported(f"{self.name}: no Flax stack of reverse=True RNNs with seq_lengths is STACK-1's chain")
        carries = None
        if initial_state is not None:
            # STATE-1 / LAYOUT-5: Flax's carry is (c, h)
            carries = [[(np.asarray(c, cfg.dtype), np.asarray(h, cfg.dtype)) for h, c in dirs] for dirs in initial_state]
        return lengths, None if lengths is None else np.asarray(lengths, np.int32), carries

    @staticmethod
    def _sequences(cfg: Config, outs, lengths, xp):
        """Flax's per-direction output sequences -> the canonical ones (``xp``: numpy, or jax.numpy inside a
        differentiated function): zeros past each length (MASK-2, module doc), processing order for
        go_backwards with lengths (DIR-2)."""
        if lengths is None:
            return list(outs)
        T = outs[0].shape[1]
        valid = np.arange(T)[None, :, None] < np.asarray(lengths)[:, None, None]
        seqs = [xp.where(valid, s, 0) for s in outs]
        if cfg.go_backwards:
            seqs[0] = seqs[0][:, ::-1]  # keep_order=True gave original order; DIR-2 wants processing order
        return seqs

    def forward(self, handle: _Handle, x: np.ndarray, *, mask: np.ndarray | None = None, initial_state=None,
                masked_output: str = "zero") -> Output:
        import jax

        cfg = handle.config
        lengths, seq, carries = self._call_arguments(cfg, mask, initial_state, masked_output)
        precision = ieee_matmuls_jax(handle.device)
        outs, final = jax.block_until_ready(handle.runner(handle.params, np.asarray(x, cfg.dtype), seq, carries))
        return self._output(handle, outs, final, lengths, precision)

    def _output(self, handle: _Handle, outs, final, lengths, precision: str) -> Output:
        cfg, D, L = handle.config, handle.config.num_directions, handle.config.num_layers
        output = canonical_output(cfg, *self._sequences(cfg, [np.asarray(o) for o in outs], lengths, np))
        return Output(output=output, h=[[np.asarray(final[l][d][1]) for d in range(D)] for l in range(L)],
                      c=[[np.asarray(final[l][d][0]) for d in range(D)] for l in range(L)],
                      kernel_path=f"{handle.variant}:scan", precision=precision)

    # ---- gradients (spec/gradients.md GRAD-1) -----------------------------------------------------------------
    def gradient_unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        return self.variant_unavailable_reason(variant, device)  # jax.grad differentiates every variant

    def gradients(self, handle: _Handle, x: np.ndarray, *, g_out, g_h, g_c, initial_state,
                  mask: np.ndarray | None = None, masked_output: str = "zero", training: bool = False) -> GradientOutput:
        """``jax.grad`` of the GRAD-1 loss with respect to the input, the initial carries and every parameter,
        mapped back with ``reference.layouts`` (``from_flax``; ``from_keras`` for nnx's fused cell)."""
        import jax
        import jax.numpy as jnp

        if training:
            raise Unsupported(f"{self.name}: Flax's LSTM cells have no dropout or training mode")
        cfg = handle.config
        D, L, H = cfg.num_directions, cfg.num_layers, cfg.hidden_size
        lengths, seq, carries = self._call_arguments(cfg, mask, initial_state, masked_output)
        dt = getattr(jnp, cfg.dtype)
        gs = list(g_out) if isinstance(g_out, (tuple, list)) else ([g_out[..., :H], g_out[..., H:]] if D == 2 else [g_out])
        gs = [jnp.asarray(g, dt) for g in gs]

        def loss(params, xs, init):
            outs, final = handle.runner(params, xs, seq, init)
            seqs = self._sequences(cfg, outs, lengths, jnp)
            if not cfg.return_sequences:  # SHAPE-3: the backward direction's last processing step is time 0
                seqs = [o[:, -1] if d == 0 else o[:, 0] for d, o in enumerate(seqs)]
            total = sum(jnp.sum(o * g) for o, g in zip(seqs, gs))
            for l in range(L):
                for d in range(D):
                    total = total + jnp.sum(final[l][d][1] * jnp.asarray(g_h[l][d], dt))
                    total = total + jnp.sum(final[l][d][0] * jnp.asarray(g_c[l][d], dt))
            return total, (outs, final)

        xs = jnp.asarray(x, dt)
        # one trace and compile for the outputs and their gradients (a separate forward call compiles again)
        (_, (outs, final)), (d_params, dx, d_init) = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
            handle.params, xs, carries)
        out = self._output(handle, outs, final, lengths, ieee_matmuls_jax(handle.device))
        return GradientOutput(output=out, x=np.asarray(dx),
                              h0=[[np.asarray(d_init[l][d][1]) for d in range(D)] for l in range(L)],
                              c0=[[np.asarray(d_init[l][d][0]) for d in range(D)] for l in range(L)],
                              weights=self._canonical_grads(cfg, handle.variant, d_params),
                              kernel_path=out.kernel_path)

    @staticmethod
    def _canonical_grads(cfg: Config, variant: str, d_params: list) -> Weights:
        """Per-layer Flax parameter gradients -> canonical Weights (LAYOUT-5 inverse)."""
        layers = []
        for tree in d_params:
            cells = [tree["forward_rnn"]["cell"], tree["backward_rnn"]["cell"]] if cfg.bidirectional else [tree["cell"]]
            dirs = []
            for cell in cells:
                cell = {k: {n: np.asarray(v) for n, v in t.items()} for k, t in cell.items()}
                if variant == "nnx-optimized":
                    keras = {"kernel": cell["dense_i"]["kernel"], "recurrent_kernel": cell["dense_h"]["kernel"],
                             "bias": cell["dense_h"]["bias"]}
                    dirs.append(from_keras([[keras]], cfg).layers[0][0])
                else:
                    dirs.append(from_flax({("if" if k == "if_" else k): v for k, v in cell.items()}, cfg).layers[0][0])
            layers.append(dirs)
        return Weights(layers)

    def param_count(self, handle: _Handle) -> int:
        return handle.size  # PARAM-4: the total size of the Flax layers' parameter leaves

    def bare_forward(self, handle: _Handle, x: np.ndarray):
        """The jitted module call :meth:`forward` makes, on a device array converted once (bench/)."""
        from jax import block_until_ready, device_put

        params, xs = device_put((handle.params, np.asarray(x, handle.config.dtype)))
        block_until_ready(handle.runner(params, xs, None, None))  # compile outside the timed calls
        return lambda: block_until_ready(handle.runner(params, xs, None, None))


# ---- the two APIs: each returns (runner, template) for one structure -----------------------------------
# runner(params, x, seq_lengths, carries) -> (outputs, final): outputs a list per direction of (B, T, H) in
# original time order (go_backwards without lengths: processing order), final[layer][direction] = (c, h).

def _nnx_structure(config: Config, variant: str, act: str, ract: str):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    Cell = nnx.OptimizedLSTMCell if variant == "nnx-optimized" else nnx.LSTMCell
    dt = getattr(jnp, config.dtype)
    merge = (lambda a, b: (a, b)) if config.bidirectional and config.effective_merge_mode == "none" else None

    def rnn(d_in, reverse, keep_order):
        # zeros initialisers: the weights are replaced at each build, and the default ones (orthogonal: a QR
        # per kernel, each eager op compiled for its shape) cost seconds per structure
        cell = Cell(d_in, config.units, gate_fn=getattr(jax.nn, ract), activation_fn=getattr(jax.nn, act),
                    kernel_init=nnx.initializers.zeros, recurrent_kernel_init=nnx.initializers.zeros,
                    dtype=dt, param_dtype=dt, rngs=nnx.Rngs(0))
        return nnx.RNN(cell, return_carry=True, reverse=reverse, keep_order=keep_order)

    modules = []
    for l in range(config.num_layers):
        d_in = config.layer_input_dim(l)
        if config.bidirectional:
            kw = {"merge_fn": merge} if merge else {}
            modules.append(nnx.Bidirectional(rnn(d_in, False, False), rnn(d_in, True, True), return_carry=True, **kw))
        else:
            modules.append(rnn(d_in, config.go_backwards, False))
    split = [nnx.split(m, nnx.Param, ...) for m in modules]
    graphdefs = [g for g, _, _ in split]
    rest = [r for _, _, r in split]
    template = [nnx.to_pure_dict(p) for _, p, _ in split]

    @jax.jit
    def jitted(params, rest, x, seq_lengths, carries):
        finals, outs = [], None
        for l, (g, r) in enumerate(zip(graphdefs, rest)):
            state = jax.tree_util.tree_map(lambda a: a, split[l][1])  # a fresh copy to fill
            nnx.replace_by_pure_dict(state, params[l])
            layer = nnx.merge(g, state, r)
            init = _pair_or_one(config, None if carries is None else carries[l])
            kw = {"seq_lengths": seq_lengths, "initial_carry": init}
            if not config.bidirectional and config.go_backwards and seq_lengths is not None:
                kw["keep_order"] = True
            carry, y = layer(x, **kw)
            finals.append(list(carry) if config.bidirectional else [carry])
            outs, x = _split_directions(config, y)
        return outs, finals

    def run(params, x, seq_lengths, carries):
        # the non-parameter state (the RNN's carry RngStream) is an argument: nnx refuses to mutate a
        # variable closed over from outside the trace
        return jitted(params, rest, x, seq_lengths, carries)

    return run, template


def _linen_structure(config: Config, variant: str, act: str, ract: str):
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    Cell = nn.OptimizedLSTMCell if variant == "linen-optimized" else nn.LSTMCell
    dt = getattr(jnp, config.dtype)
    merge = (lambda a, b: (a, b)) if config.bidirectional and config.effective_merge_mode == "none" else None

    def rnn(reverse, keep_order):
        cell = Cell(config.units, gate_fn=getattr(jax.nn, ract), activation_fn=getattr(jax.nn, act), dtype=dt,
                    param_dtype=dt)
        return nn.RNN(cell, return_carry=True, reverse=reverse, keep_order=keep_order)

    modules, template = [], []
    key = jax.random.key(0)
    for l in range(config.num_layers):
        if config.bidirectional:
            kw = {"merge_fn": merge} if merge else {}
            m = nn.Bidirectional(rnn(False, False), rnn(True, True), return_carry=True, **kw)
        else:
            m = rnn(config.go_backwards, False)
        modules.append(m)
        probe = jax.ShapeDtypeStruct((1, 1, config.layer_input_dim(l)), dt)
        # the parameter structure only (eval_shape runs no initialiser); the weights come with each build
        template.append(jax.eval_shape(m.init, key, probe)["params"])

    @jax.jit
    def run(params, x, seq_lengths, carries):
        finals, outs = [], None
        for l, m in enumerate(modules):
            init = _pair_or_one(config, None if carries is None else carries[l])
            kw = {"seq_lengths": seq_lengths, "initial_carry": init}
            if not config.bidirectional and config.go_backwards and seq_lengths is not None:
                kw["keep_order"] = True
            carry, y = m.apply({"params": params[l]}, x, **kw)
            finals.append(list(carry) if config.bidirectional else [carry])
            outs, x = _split_directions(config, y)
        return outs, finals

    return run, template


def _pair_or_one(config: Config, carries):
    """One layer's initial carry as its module takes it: a (c, h) pair, or one per direction (Bidirectional)."""
    if carries is None:
        return None
    return tuple(tuple(c) for c in carries) if config.bidirectional else tuple(carries[0])


def _split_directions(config: Config, y):
    """A layer's merged output -> (per-direction sequences, the next layer's input)."""
    import jax.numpy as jnp

    if not config.bidirectional:
        return [y], y
    if config.effective_merge_mode == "none":
        return list(y), jnp.concatenate(y, axis=-1)
    H = config.hidden_size
    return [y[..., :H], y[..., H:]], y
