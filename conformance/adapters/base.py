"""The adapter API: how the suite talks to one LSTM implementation.

An adapter turns a canonical :class:`reference.Config` + :class:`reference.Weights` into its framework's
layer (converting with ``reference.layouts`` only), runs it, and hands back canonical outputs. It
declares what it supports up front (:class:`Capabilities`), so strategies draw only supported cases
and everything else is *skipped with the adapter's reason*, never silently dropped.

Third-party implementations register through the entry-point group ``lstm_conformance.adapters``
(see README, "Writing an adapter").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference import Config, Weights
from reference.config import BIAS_MODES, DTYPES, MERGE_MODES
from reference.params import CONVENTIONS

__all__ = ["Adapter", "Capabilities", "Output", "GradientOutput", "Unsupported", "OPTIONS", "DTYPES", "BIAS_MODES", "MERGE_MODES",
           "PARAM_CONVENTIONS", "canonical_output"]

#: Options an adapter may declare (each maps to spec rules; see spec/options.md).
OPTIONS = frozenset({
    "return_sequences", "return_state", "go_backwards", "bidirectional", "num_layers", "proj_size",
    "peepholes", "cell_clip", "input_forget", "use_bias=False", "initial_state", "mask", "lengths",
    "stateful", "defaults",
})
#: The parameter-count conventions of reference.param_count; the other Capabilities fields take Config's
#: own values (reference.config DTYPES, BIAS_MODES, MERGE_MODES).
PARAM_CONVENTIONS = CONVENTIONS


class Unsupported(Exception):
    """Raised by an adapter for a case it cannot express; the check is recorded as *skip* with the reason."""


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can run.

    ``activations`` maps the framework's own activation names to the registry function each really
    computes (ACT-30), e.g. ``{"hard_sigmoid": "hard_sigmoid_keras3"}``; strategies draw registry
    names from its values and the adapter passes the framework name.
    """

    options: frozenset[str]
    activations: dict[str, str]
    dtypes: tuple[str, ...] = ("float32", "float64")
    merge_modes: tuple[str, ...] = ()
    bias_modes: tuple[str, ...] = ("single",)
    param_convention: str = "keras"
    max_layers: int = 1
    arbitrary_masks: bool = True  # False: only right-padded masks (e.g. packed sequences)
    fully_masked_rows: bool = True  # False: every row needs >= 1 valid step (packed sequences, cuDNN)

    def __post_init__(self):
        # a misspelt declaration would otherwise read as "unsupported" and skip its checks silently
        for what, values, allowed in (("options", self.options, OPTIONS), ("dtypes", self.dtypes, DTYPES),
                                      ("bias_modes", self.bias_modes, BIAS_MODES),
                                      ("merge_modes", self.merge_modes, MERGE_MODES),
                                      ("param_convention", (self.param_convention,), PARAM_CONVENTIONS)):
            if isinstance(values, str):
                raise TypeError(f"Capabilities.{what} must be a collection of strings, not the string {values!r}")
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                raise ValueError(f"Capabilities.{what}: unknown {', '.join(map(repr, unknown))}; "
                                 f"allowed: {', '.join(sorted(allowed))}")

    def registry_to_framework(self, registry_name: str) -> str:
        for fw, reg in self.activations.items():
            if reg == registry_name:
                return fw
        raise Unsupported(f"activation {registry_name!r} has no name in this framework "
                          f"(supported: {sorted(set(self.activations.values()))})")


@dataclass
class Output:
    """Canonical outputs of one forward call (see reference.LSTMResult).

    ``h[l][d]``/``c[l][d]`` per layer and direction; ``kernel_path`` when the framework tells
    ('cudnn', 'generic', ...); ``precision`` the matmul precision mode in force ('ieee', 'tf32').
    """

    output: Any
    h: list[list[np.ndarray]] = field(default_factory=list)
    c: list[list[np.ndarray]] = field(default_factory=list)
    kernel_path: str | None = None
    precision: str = "ieee"


@dataclass
class GradientOutput:
    """Canonical gradients of one call (GRAD-1; the adapter-side twin of ``reference.backward.Gradients``).

    The loss is ``sum(output * g_out) + sum_l,d (sum(h_T[l][d] * g_h[l][d]) + sum(c_T[l][d] * g_c[l][d]))``.
    ``x`` (B, T, input_dim); ``h0[l][d]`` (B, H) and ``c0[l][d]`` (B, u) the gradients of the initial state
    the call started from; ``weights`` canonical tensors (gate order i, f, g, o; the framework's layout
    converted back with ``reference.layouts``; one canonical bias that a framework splits in two takes the
    gradient of one of them, see spec/gradients.md); ``output`` the forward outputs of the same call.
    """

    output: Output
    x: np.ndarray
    h0: list[list[np.ndarray]]
    c0: list[list[np.ndarray]]
    weights: Weights
    kernel_path: str | None = None


class Adapter:
    """Base class. Subclasses set the class attributes and implement build/forward/param_count."""

    name: str = ""  # backend name used on the command line, e.g. "keras-tensorflow"
    framework: str = ""  # e.g. "keras"
    capabilities: Capabilities
    #: kernel paths offered for the same math; each is a separately recorded variant
    variants: tuple[str, ...] = ("default",)
    #: rules every check of this adapter exercises besides the property's own, e.g. its weight layout
    #: (LAYOUT-3 for torch: a wrong conversion fails every forward check)
    exercises: tuple[str, ...] = ()
    #: fraction of the profile's max_examples each property draws for this adapter (at least 1 example): below
    #: 1 for a path whose every case is an export or conversion of seconds, so a run fits the CI limit
    examples_scale: float = 1.0

    # ---- environment -------------------------------------------------------------------------
    #: modules the framework needs; the default unavailable_reason imports them
    requires: tuple[str, ...] = ()

    def unavailable_reason(self) -> str | None:
        """None when the framework imports; otherwise why not (reported as *not installed*)."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                return f"{module} is not importable: {exc}"
        return None

    def versions(self) -> dict[str, str]:
        return {}

    #: the releases this adapter drives, per package as :meth:`versions` names it (PEP 440 specifiers): the
    #: oldest release each was run on (README "Supported releases"); nothing declared means no limit known
    supported: dict[str, str] = {}

    def version_unsupported_reason(self) -> str | None:
        """None when every installed package is within :attr:`supported`; otherwise one line naming the
        release and the range (the run stops with it, rather than recording a crash per check)."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        installed = self.versions()
        for package, spec in self.supported.items():
            have = installed.get(package)
            try:
                inside = have is None or SpecifierSet(spec).contains(Version(have), prereleases=True)
            except InvalidVersion:
                continue  # a development build with a non-PEP 440 version string: let it run
            if not inside:
                return f"{package} {have} is outside the releases {self.name} drives ({package}{spec})"
        return None

    def cannot_run_reason(self) -> str | None:
        """Why a run of this backend stops before its first check: the framework is missing or its release is
        outside :attr:`supported`; None when it can run."""
        return self.unavailable_reason() or self.version_unsupported_reason()

    def devices(self) -> list[str]:
        return ["cpu"]

    # ---- per-case support ---------------------------------------------------------------------
    def variant_unavailable_reason(self, variant: str, device: str) -> str | None:
        """None when ``variant`` can run on ``device`` at all; else why every check of it is skipped
        (e.g. a cuDNN variant without a GPU). Checked once per test, before any case is drawn."""
        if variant not in self.variants:
            return f"{self.name} has no variant {variant!r} (has {', '.join(self.variants)})"
        return None

    def variant_options(self, variant: str) -> frozenset:
        """The options ``variant`` supports (``capabilities.options`` unless a variant has fewer): a property
        that needs one it lacks is skipped for that variant, not drawn and refused case by case."""
        return self.capabilities.options

    def masked_output_rules(self, config: Config, variant: str) -> tuple[str, ...]:
        """MASK-2 rules this adapter/variant can produce for ``config`` ('carry', 'zero')."""
        return ("carry", "zero")

    def last_output_reading(self, config: Config, variant: str) -> str:
        """MASK-2: the last output (return_sequences=False) at a masked last step, as the framework's governing
        text gives it ('last-step': the zero-filled step, as torch's packed and ONNX's zero-filled sequences
        read it; 'last-valid': the last valid step's output). A reading of reference.LAST_OUTPUT_READINGS."""
        return "last-step"

    def unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        """None when ``config`` can run; else the reason the check is skipped."""
        caps = self.capabilities
        needs = {
            "return_sequences": config.return_sequences, "return_state": config.return_state,
            "go_backwards": config.go_backwards, "bidirectional": config.bidirectional,
            "num_layers": config.num_layers > 1, "proj_size": config.proj_size > 0,
            "peepholes": config.peepholes, "cell_clip": config.cell_clip is not None,
            "input_forget": config.input_forget, "use_bias=False": not config.use_bias,
        }
        for option, needed in needs.items():
            if needed and option not in caps.options and option != "return_sequences" and option != "return_state":
                return f"{self.name} does not support {option}"
        if config.dtype not in caps.dtypes:
            return f"{self.name} does not run dtype {config.dtype} (supported: {', '.join(caps.dtypes)})"
        if config.num_layers > caps.max_layers:
            return f"{self.name} runs at most {caps.max_layers} stacked layer(s)"
        if config.bidirectional and config.effective_merge_mode not in caps.merge_modes:
            return f"{self.name} does not support merge_mode={config.effective_merge_mode}"
        if config.use_bias and config.bias_mode not in caps.bias_modes:
            return f"{self.name} does not support bias_mode={config.bias_mode}"
        for act in (config.act, config.recurrent_act):
            if act.params or act.name not in caps.activations.values():
                return f"{self.name} has no activation computing {act}"
        if device not in self.devices():
            return f"{self.name}: device {device!r} not available (has {', '.join(self.devices())})"
        return None

    def require_supported(self, config: Config, variant: str, device: str) -> None:
        """Raise Unsupported with :meth:`unsupported_reason`, if there is one (a build's first step)."""
        reason = self.unsupported_reason(config, variant, device)
        if reason:
            raise Unsupported(reason)

    # ---- running ------------------------------------------------------------------------------
    def build(self, config: Config, weights: Weights, *, variant: str = "default", device: str = "cpu",
              stateful: bool = False) -> Any:
        """Return a handle holding the framework layer with ``weights`` assigned."""
        raise NotImplementedError

    def forward(self, handle: Any, x: np.ndarray, *, mask: np.ndarray | None = None,
                initial_state=None, masked_output: str = "carry") -> Output:
        """Run on canonical ``x[B, T, d]`` (float64 in; cast to the config dtype by the adapter)."""
        raise NotImplementedError

    # ---- gradients and training mode (spec/gradients.md GRAD-*, spec/training.md TRAIN-*) ------------
    def gradient_unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        """None when :meth:`gradients` can run ``config`` on this variant; else why gradient checks skip
        (an inference-only runtime: "computes no gradients")."""
        return f"{self.name} computes no gradients"

    def gradients(self, handle: Any, x: np.ndarray, *, g_out, g_h, g_c, initial_state,
                  mask: np.ndarray | None = None, masked_output: str = "carry",
                  training: bool = False) -> GradientOutput:
        """The framework's own autodiff (tf.GradientTape, jax.vjp, torch.autograd) of the GRAD-1 loss.

        Arguments as :meth:`forward`, cast by the adapter to the config dtype; ``initial_state`` is always
        given (``[layer][direction] = (h, c)``) so its gradient exists; ``g_out`` is shaped as the canonical
        output (a pair for merge_mode 'none'), ``g_h[l][d]``/``g_c[l][d]`` as ``Output.h``/``.c``.
        ``training`` calls the layer in training mode (dropout active where the handle was built with it).
        """
        raise Unsupported(self.gradient_unsupported_reason(handle.config, "default", "cpu")
                          if hasattr(handle, "config") else f"{self.name} computes no gradients")

    def dropout_unsupported_reason(self, config: Config, variant: str, device: str) -> str | None:
        """None when :meth:`build_dropout` can build ``config`` (TRAIN-*); else why not."""
        return f"{self.name} has no dropout options"

    def build_dropout(self, config: Config, weights: Weights, *, dropout: float, recurrent_dropout: float,
                      variant: str = "default", device: str = "cpu") -> Any:
        """:meth:`build` with the framework's dropout options set (Keras ``dropout``/``recurrent_dropout``:
        on the cell's inputs / recurrent state; torch ``dropout``: between stacked layers, its only one,
        so a torch adapter refuses ``recurrent_dropout > 0``). :meth:`forward` on the handle is inference."""
        raise Unsupported(self.dropout_unsupported_reason(config, variant, device) or
                          f"{self.name} has no dropout options")

    def forward_training(self, handle: Any, x: np.ndarray, *, mask: np.ndarray | None = None,
                         initial_state=None, masked_output: str = "carry") -> Output:
        """:meth:`forward` with the layer called in training mode (Keras ``training=True``, torch
        ``module.train()``): dropout, where the handle has it, is active."""
        raise Unsupported(f"{self.name} has no training-mode call")

    def param_count_unsupported_reason(self, variant: str) -> str | None:
        """None when :meth:`param_count` can answer on this variant; else why every parameter check skips."""
        return None

    def param_count(self, handle: Any) -> int:
        """The parameter count *as the framework reports it* (count_params(), sum of numel())."""
        raise NotImplementedError

    def artifacts(self) -> list:
        """Files the last :meth:`forward` ran (an exported graph): a failing check keeps copies beside its
        repro blob, so the file that disagreed can be opened without exporting again. None by default."""
        return []

    def param_convention(self, config: Config) -> str:
        """PARAM-*: the reference convention (keras, torch, onnx, flax) this framework counts by."""
        return self.capabilities.param_convention

    def reset_state(self, handle: Any) -> None:
        """STATE-3: zero a stateful layer's stored state."""
        raise Unsupported(f"{self.name} has no stateful layers")

    def bare_forward(self, handle: Any, x: np.ndarray):
        """For bench/throughput.py: a zero-argument callable running only the framework's own forward
        call on inputs already converted to its tensors (no conversion, no canonicalisation) — the
        baseline that the adapter's overhead is measured against."""
        raise Unsupported(f"{self.name} has no bare forward call for benchmarking")

    def default_weights(self, config: Config) -> tuple[Weights, dict[str, str]]:
        """DEF-1/DEF-2: a fresh layer's own initial weights (canonical) and its default activation
        names mapped to registry names {"activation": .., "recurrent_activation": ..}."""
        raise Unsupported(f"{self.name} does not expose default initialisation")


def canonical_output(config: Config, forward: np.ndarray, backward: np.ndarray | None = None):
    """SHAPE-2/SHAPE-3/BIDI-1/BIDI-2 from per-direction output sequences ``(B, T, H)``: ``forward`` in
    processing order (reversed time with go_backwards, DIR-2), ``backward`` in original time order.

    Only the layout-only merges: 'concat' and 'none'; sum/mul/ave are arithmetic a framework must do
    itself, so an adapter that would need them here declares them unsupported instead.
    """
    if backward is None:
        return forward if config.return_sequences else forward[:, -1]
    if not config.return_sequences:
        # the backward direction's last processing step is original time 0 (SHAPE-3)
        forward, backward = forward[:, -1], backward[:, 0]
    mode = config.effective_merge_mode
    if mode == "none":
        return (forward, backward)
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    raise Unsupported(f"merge_mode={mode!r} is arithmetic on the two directions, not a layout")
