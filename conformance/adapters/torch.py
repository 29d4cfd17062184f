"""The ``torch`` adapter: ``torch.nn.LSTM`` (PyTorch 2.x).

What torch offers and how it maps onto the canonical API (FACTS "PyTorch", spec/layouts.md LAYOUT-3):
- weights go through ``reference.layouts.to_torch`` only (state_dict names ``weight_ih_l0``,
  ``bias_hh_l1_reverse``, ``weight_hr_l0``); two biases, so ``bias_mode='double'`` is native and a single
  canonical bias is ``(b, 0)``.
- fixed sigmoid/tanh; no go_backwards, peepholes, clip, coupled gates, stateful layers or masks.
- bidirectional output is ``cat([fwd, bwd])`` with bwd in original time order, so merge 'concat' is native
  and 'none' is a pure split of that tensor; sum/mul/ave would be arithmetic in the adapter, not torch's
  behaviour, so they are not offered.
- ``h0/c0/h_n/c_n`` are ``(D*L, N, H_out)`` layer-major ``[l0 fwd, l0 bwd, l1 fwd, ...]`` and are never
  batch-first, whatever ``batch_first`` says.
- masks: only right-padded ones, as ``lengths`` through ``pack_padded_sequence`` (each length >= 1);
  ``pad_packed_sequence`` writes zeros past each length, i.e. MASK-2 rule 'zero'.

Variants (same math, separately recorded): ``batch_first``, ``time_major`` (batch_first=False),
``unbatched`` (one ``(T, d)`` call per batch row) and ``cudnn`` (GPU only). On a GPU the first three run
with cuDNN disabled (aten's generic CUDA kernels), so ``cudnn`` is the only variant that reaches cuDNN.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference import Config, Weights
from reference.layouts import from_torch, to_torch

from .base import Adapter, Capabilities, GradientOutput, Output, Unsupported, canonical_output
from .shared import LayerCache, ieee_matmuls_torch, layer_major, lengths_from_mask, per_layer, torch_devices


@contextmanager
def _cudnn_enabled(enabled: bool):
    """Set only ``torch.backends.cudnn.enabled`` for the call. Not ``torch.backends.cudnn.flags()``: in torch
    2.13 it also resets allow_tf32 to True (and fp32_precision), which would undo the NUM-3 setting."""
    import torch

    before = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = before


#: jit-script / jit-trace / compile: the module deployed through TorchScript or torch.compile; cell-loop: the
#: same weights in nn.LSTMCell stepped by a Python loop (torch_paths.py)
PATH_VARIANTS = ("jit-script", "jit-trace", "compile", "cell-loop")
_VARIANTS = ("batch_first", "time_major", "unbatched", "cudnn", *PATH_VARIANTS)
SLOW_VARIANTS_ENV = "LSTM_CONFORMANCE_SLOW_VARIANTS"
_CACHE_SIZE = 32  # modules kept per adapter; a ci run meets a few dozen structures


@dataclass
class _Handle:
    config: Config
    variant: str
    device: str
    entry: _Entry
    params: dict[str, Any]  # this handle's weights as framework tensors, loaded into entry.module


@dataclass
class _Entry:
    module: Any
    # The handle whose weights the module holds now. The handle itself, not id(handle): a freed handle's
    # id is reused by the next one built, which then skipped loading and ran on stale weights.
    owner: Any = None
    names: tuple[str, ...] = field(default_factory=tuple)
    compiled: dict = field(default_factory=dict)  # jit variants: the scripted / traced callable(s) of module
    parameters: tuple = ()  # module's parameters in the order of names (copied into without a lookup)


class TorchAdapter(Adapter):
    name = "torch"
    exercises = ("LAYOUT-3",)
    framework = "torch"
    variants = _VARIANTS
    requires = ("torch",)
    supported = {"torch": ">=2.0.0"}  # 2.0.0, the oldest wheel for Python 3.11, to 2.13.0 run
    capabilities = Capabilities(
        options=frozenset({"return_sequences", "return_state", "bidirectional", "num_layers", "proj_size",
                           "use_bias=False", "initial_state", "lengths"}),
        activations={"tanh": "tanh", "sigmoid": "sigmoid"},
        dtypes=("float32", "float64"),
        merge_modes=("concat", "none"),
        bias_modes=("single", "double"),
        param_convention="torch",
        max_layers=4,
        arbitrary_masks=False,  # pack_padded_sequence expresses right padding only
        fully_masked_rows=False,  # pack_padded_sequence rejects length 0
    )

    def __init__(self) -> None:
        self._modules = LayerCache(_CACHE_SIZE)
        self._threads_set = False

    def _set_threads(self) -> None:
        """One intra-op thread unless OMP_NUM_THREADS says otherwise: the suite's matrices are small, and
        torch 2.13's OpenMP pool made a forward call 5-10x slower with 2 threads than with 1 on the 2-core,
        shared CI machine (0.5 vs 3-60 ms at u=8, 12 vs 50-145 ms at u=100, T=64)."""
        import torch

        if not self._threads_set and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(1)
        self._threads_set = True

    # ---- environment -------------------------------------------------------------------------
    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def devices(self) -> list[str]:
        return torch_devices()

    # ---- per-case support ---------------------------------------------------------------------
    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        return ("zero",)  # MASK-2: pad_packed_sequence pads with zeros

    def variant_unavailable_reason(self, variant: str, device: str) -> str | None:
        if variant == "cudnn" and (device != "gpu" or "gpu" not in self.devices()):
            return "no GPU"  # cuDNN exists only on CUDA devices; run with --device gpu
        if variant == "compile" and not os.environ.get(SLOW_VARIANTS_ENV):
            return (f"slow: torch.compile took ~29 s per new structure here (one per drawn config); set "
                    f"{SLOW_VARIANTS_ENV}=1 to run it")
        return super().variant_unavailable_reason(variant, device)

    def unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        reason = self.variant_unavailable_reason(variant, device)
        if reason:
            return reason
        reason = super().unsupported_reason(config, variant, device)
        if reason:
            return reason
        if variant == "cell-loop" and config.proj_size:
            return "cell-loop: nn.LSTMCell has no projection (proj_size)"
        # nn.LSTM's gates are fixed: sigmoid for i, f, o and tanh for g and the cell output (GATE-2).
        if config.activation != "tanh" or config.recurrent_activation != "sigmoid":
            return (f"{self.name}: activations are fixed to activation='tanh', recurrent_activation='sigmoid' "
                    f"(got {config.activation!r}, {config.recurrent_activation!r})")
        return None

    # ---- running ------------------------------------------------------------------------------
    def _torch_device(self, device: str):
        import torch

        return torch.device("cuda" if device == "gpu" else "cpu")

    @staticmethod
    def _tensor(a, dev, dt):
        """A numpy array as a tensor of dtype ``dt`` on ``dev`` (on the CPU converted by numpy: no ``.to``)."""
        import torch

        if dev.type == "cpu":
            return torch.from_numpy(np.ascontiguousarray(a, dtype=str(dt).removeprefix("torch.")))
        return torch.from_numpy(np.ascontiguousarray(a)).to(device=dev, dtype=dt)

    def _module(self, config: Config, variant: str, device: str) -> _Entry:
        """A cached nn.LSTM per structure; new weights are copied in, not rebuilt (building and moving
        a module costs far more than a forward call on the suite's small cases)."""
        import torch

        key = (config.input_dim, config.units, config.num_layers, config.bidirectional, config.proj_size,
               config.use_bias, config.dtype, variant, device)
        entry = self._modules.get(key)
        if entry is not None:
            return entry
        module = torch.nn.LSTM(config.input_dim, config.units, num_layers=config.num_layers, bias=config.use_bias,
                               batch_first=variant != "time_major", bidirectional=config.bidirectional,
                               proj_size=config.proj_size)
        module = module.to(device=self._torch_device(device), dtype=getattr(torch, config.dtype)).eval()
        module.requires_grad_(False)
        names, parameters = zip(*module.named_parameters())
        return self._modules.put(key, _Entry(module, names=names, parameters=parameters))

    def build(self, config: Config, weights: Weights, *, variant: str = "batch_first", device: str = "cpu",
              stateful: bool = False) -> _Handle:
        import torch

        if stateful:
            raise Unsupported(f"{self.name}: nn.LSTM keeps no state between calls (no stateful option)")
        self.require_supported(config, variant, device)
        ieee_matmuls_torch(device)  # NUM-3: float32 matmuls in full precision
        self._set_threads()
        entry = self._module(config, variant, device)
        state_dict = to_torch(weights, config)  # LAYOUT-3
        if set(state_dict) != set(entry.names):
            raise ValueError(f"to_torch gave {sorted(state_dict)}, nn.LSTM has {sorted(entry.names)}")
        dev, dt = self._torch_device(device), getattr(torch, config.dtype)
        params = {k: self._tensor(v, dev, dt) for k, v in state_dict.items()}
        handle = _Handle(config, variant, device, entry, params)
        self._load(handle)
        return handle

    @staticmethod
    def _load(handle: _Handle) -> None:
        import torch

        entry = handle.entry
        if entry.owner is handle:
            return
        with torch.no_grad():
            for name, p in zip(entry.names, entry.parameters):
                p.copy_(handle.params[name])
        entry.owner = handle

    def forward(self, handle: _Handle, x: np.ndarray, *, mask: np.ndarray | None = None, initial_state=None,
                masked_output: str = "zero") -> Output:
        import torch

        cfg = handle.config
        dev, dt = self._torch_device(handle.device), getattr(torch, cfg.dtype)
        lengths, h0, c0 = self._call_arguments(mask, initial_state, masked_output)

        def tensor(a):
            return self._tensor(a, dev, dt)

        self._load(handle)
        precision = ieee_matmuls_torch(handle.device) if cfg.dtype == "float32" else "ieee"  # before the call
        with torch.inference_mode(), self._kernel(handle):
            state = None if h0 is None else (tensor(h0), tensor(c0))
            y, hn, cn = self._run(handle, tensor(x), lengths, state)
            kernel_path = self._kernel_path(handle)
        y = y.cpu().numpy()  # (B, T, D*H), batch-major; bidirectional = cat([fwd, bwd]), bwd in original order
        return self._output(cfg, y, hn.cpu().numpy(), cn.cpu().numpy(), kernel_path, precision)

    # ---- gradients (spec/gradients.md GRAD-1, GRAD-2) -------------------------------------------------------
    def gradient_unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        return self.variant_unavailable_reason(variant, device)  # torch.autograd differentiates every variant

    def gradients(self, handle: _Handle, x: np.ndarray, *, g_out, g_h, g_c, initial_state,
                  mask: np.ndarray | None = None, masked_output: str = "zero", training: bool = False) -> GradientOutput:
        """torch.autograd.grad of the GRAD-1 loss with respect to the input, h0, c0 and every parameter of
        nn.LSTM, mapped back with ``reference.layouts.from_torch``. A single canonical bias is ``bias_ih`` with
        ``bias_hh = 0`` (LAYOUT-3): both receive its gradient, so only ``bias_ih``'s is kept (from_torch would
        sum them, twice the gradient)."""
        import torch

        cfg = handle.config
        D, L, H = cfg.num_directions, cfg.num_layers, cfg.hidden_size
        dev, dt = self._torch_device(handle.device), getattr(torch, cfg.dtype)
        lengths, h0, c0 = self._call_arguments(mask, initial_state, masked_output)

        def tensor(a, leaf: bool = False):
            t = torch.from_numpy(np.ascontiguousarray(a)).to(device=dev, dtype=dt)
            return t.requires_grad_(True) if leaf else t

        self._load(handle)
        precision = ieee_matmuls_torch(handle.device) if cfg.dtype == "float32" else "ieee"
        module = handle.entry.module
        # cuDNN's RNN backward runs only in training mode; without dropout the math is the same
        module.train(training or handle.variant == "cudnn")
        module.requires_grad_(True)
        try:
            with torch.enable_grad(), self._kernel(handle):
                xt, h0t, c0t = tensor(x, True), tensor(h0, True), tensor(c0, True)
                y, hn, cn = self._run(handle, xt, lengths, (h0t, c0t))
                kernel_path = self._kernel_path(handle)
                outputs = [y[..., :H], y[..., H:]] if D == 2 else [y]
                if not cfg.return_sequences:  # SHAPE-3: backward direction's last processing step is time 0
                    outputs = [o[:, -1] if d == 0 else o[:, 0] for d, o in enumerate(outputs)]
                if isinstance(g_out, (tuple, list)):
                    gs = list(g_out)
                else:
                    gs = [g_out[..., :H], g_out[..., H:]] if D == 2 else [g_out]
                loss = sum((o * tensor(g)).sum() for o, g in zip(outputs, gs))
                gh, gc = (np.stack(flat) for flat in layer_major([list(zip(a, b)) for a, b in zip(g_h, g_c)]))
                loss = loss + (hn * tensor(gh)).sum() + (cn * tensor(gc)).sum()
                names = [n for n, _ in module.named_parameters()]
                grads = torch.autograd.grad(loss, [xt, h0t, c0t, *module.parameters()])
        finally:
            module.requires_grad_(False)
            module.eval()
        dx, dh0, dc0 = (g.detach().cpu().numpy() for g in grads[:3])
        sd = {n: g.detach().cpu().numpy() for n, g in zip(names, grads[3:])}
        if cfg.use_bias and cfg.bias_mode == "single":
            sd.update({n: np.zeros_like(v) for n, v in sd.items() if n.startswith("bias_hh")})
        out = self._output(cfg, y.detach().cpu().numpy(), hn.detach().cpu().numpy(), cn.detach().cpu().numpy(),
                           kernel_path, precision)
        return GradientOutput(output=out, x=dx, h0=per_layer(dh0, L, D), c0=per_layer(dc0, L, D),
                              weights=from_torch(sd, cfg), kernel_path=kernel_path)

    # ---- training mode (spec/training.md TRAIN-*) -------------------------------------------------------------
    def variant_options(self, variant: str) -> frozenset:
        options = self.capabilities.options
        return options - {"proj_size"} if variant == "cell-loop" else options  # nn.LSTMCell has no projection

    def dropout_unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        if variant == "cell-loop":  # nn.LSTM's dropout acts between layers; a custom loop applies its own
            return "cell-loop: nn.LSTMCell has no dropout (a loop over cells applies its own between layers)"
        return self.unsupported_reason(config, variant, device)

    def build_dropout(self, config: Config, weights: Weights, *, dropout: float, recurrent_dropout: float,
                      variant: str = "batch_first", device: str = "cpu") -> _Handle:
        """nn.LSTM's one dropout option: "introduces a Dropout layer on the outputs of each LSTM layer except the
        last layer" (TRAIN-3); it has no recurrent dropout. The handle gets its own copy of the cached module
        (dropout is a module attribute, and the cache is shared by every handle of the structure)."""
        import copy

        if recurrent_dropout:
            raise Unsupported(f"{self.name}: nn.LSTM has no recurrent dropout (its dropout acts between layers)")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout!r}: must be in [0, 1)")
        handle = self.build(config, weights, variant=variant, device=device)
        entry = _Entry(copy.deepcopy(handle.entry.module), names=handle.entry.names)
        entry.module.dropout = float(dropout)  # read by nn.LSTM.forward at each call (applied in train mode)
        handle.entry = entry
        self._load(handle)
        return handle

    def forward_training(self, handle: _Handle, x: np.ndarray, *, mask: np.ndarray | None = None,
                         initial_state=None, masked_output: str = "zero") -> Output:
        module = handle.entry.module
        module.train(True)
        try:
            return self.forward(handle, x, mask=mask, initial_state=initial_state, masked_output=masked_output)
        finally:
            module.eval()

    # ---- one call, shared by forward and gradients ------------------------------------------------------------
    def _call_arguments(self, mask, initial_state, masked_output):
        """(lengths or None, h0, c0 as (D*L, B, H) arrays or None) of a canonical call."""
        lengths = None
        if mask is not None:
            lengths = lengths_from_mask(self.name, mask, masked_output, via="sequence lengths")
            if lengths.min() < 1:
                raise Unsupported(f"{self.name}: pack_padded_sequence needs every length >= 1")
        h0 = c0 = None
        if initial_state is not None:
            # STATE-1: (D*L, B, H) layer-major [l0 fwd, l0 bwd, l1 fwd, ...], never batch-first.
            h0, c0 = (np.stack(s) for s in layer_major(initial_state))
        return lengths, h0, c0

    def _kernel(self, handle: _Handle):
        dev = self._torch_device(handle.device)
        return _cudnn_enabled(handle.variant == "cudnn") if dev.type == "cuda" else nullcontext()

    def _kernel_path(self, handle: _Handle) -> str:
        import torch

        if handle.variant != "cudnn" or self._torch_device(handle.device).type != "cuda":
            return "generic"
        return "cudnn" if torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled else "generic"

    def _run(self, handle: _Handle, x, lengths, state):
        """nn.LSTM on the batch-major tensor ``x`` (B, T, d) as the variant calls it -> (y (B, T, D*H), h_n, c_n)
        (torch_paths.py: packed sequences, one call per row, TorchScript, torch.compile, an LSTMCell loop)."""
        from . import torch_paths as paths

        variant, entry = handle.variant, handle.entry
        if variant == "unbatched":
            return paths.run_unbatched(entry.module, x, lengths, state)
        if variant in PATH_VARIANTS:
            return paths.run_path(variant, entry.module, entry.compiled, x, lengths, state)
        return paths.run_batched(entry.module, x, lengths, state, time_major=variant == "time_major")

    @staticmethod
    def _output(cfg: Config, y: np.ndarray, hn: np.ndarray, cn: np.ndarray, kernel_path: str, precision: str) -> Output:
        H, D, L = cfg.hidden_size, cfg.num_directions, cfg.num_layers
        output = canonical_output(cfg, y[..., :H], y[..., H:]) if D == 2 else canonical_output(cfg, y)
        return Output(output=output, h=per_layer(hn, L, D), c=per_layer(cn, L, D), kernel_path=kernel_path,
                      precision=precision)

    def bare_forward(self, handle: _Handle, x: np.ndarray):
        """bench/: the variant's own call (:meth:`_run`: the batch, one call per row, the scripted/traced
        module, the LSTMCell loop) on an already converted tensor, no lengths, no initial state, no read-back."""
        import torch

        cfg, variant = handle.config, handle.variant
        dev, dt = self._torch_device(handle.device), getattr(torch, cfg.dtype)
        inp = self._tensor(x, dev, dt)
        self._load(handle)

        def run():
            with torch.inference_mode(), (_cudnn_enabled(variant == "cudnn") if dev.type == "cuda" else nullcontext()):
                out = self._run(handle, inp, None, None)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            return out

        return run

    def param_count(self, handle: _Handle) -> int:
        return int(sum(p.numel() for p in handle.entry.module.parameters()))
