"""Judging the training-mode checks (spec/training.md TRAIN-*): a layer built with dropout, called in inference
and in training mode. Each check's parameters travel in ``case.extra`` (``train_check``, ``dropout``,
``recurrent_dropout``, ``cotangent_seed``), so a repro blob replays it through :func:`judge_training`.

Dropout is random and the reference has none: TRAIN-1/TRAIN-2 compare with the reference where the result is
deterministic; TRAIN-3 asserts that training-mode calls run and that dropout changes the output where the
framework's text puts it; TRAIN-4 reads the dropout masks' sharing across timesteps off the zero pattern of a
training-mode weight gradient.
"""

from __future__ import annotations

import numpy as np

from reference import LayerWeights, Weights, lstm_forward

from ..adapters.base import Output, Unsupported
from . import errors
from .gradient_judge import cotangents, initial_state_or_zeros
from .judge import Judgement, Target, judge_outputs, oracles, reference
from .strategies import Case

__all__ = ["judge_training", "TRAIN_CHECKS", "NO_DROP_CHANCE", "DROPOUT_SEEN", "MASK_READINGS", "no_drop_chance",
           "dropout_effect", "zero_columns"]

#: TRAIN-3: "dropout acts" is asserted only where no unit being dropped has at most this chance
NO_DROP_CHANCE = 1e-9
#: TRAIN-3: ... and where a sampled dropout mask moves the reference by at least this many times K (a mask the
#: framework draws may move it less than the one sampled here; below, a dropout that acts could pass unseen)
DROPOUT_SEEN = 16.0
#: TRAIN-4: the mask reading per framework (tf-keras documents per-sequence; Keras 3 is silent and the spec's
#: reading is per-sequence); a framework not listed has no recurrent dropout text to check
MASK_READINGS = {"keras": "per-sequence"}


def _rates(case: Case) -> tuple[float, float]:
    return float(case.extra.get("dropout", 0.0)), float(case.extra.get("recurrent_dropout", 0.0))


def _build(target: Target, case: Case):
    a = target.adapter
    reason = a.dropout_unsupported_reason(case.config, target.variant, target.device)
    if reason:
        raise Unsupported(reason)
    p, q = _rates(case)
    return a.build_dropout(case.config, case.weights, dropout=p, recurrent_dropout=q, variant=target.variant,
                           device=target.device)


def _call(case: Case) -> dict:
    return dict(mask=case.mask, initial_state=case.initial_state, masked_output=case.masked_output)


def _flat(out: Output) -> np.ndarray:
    return errors.flatten_outputs([out.output, out.h, out.c])


def _against_reference(case: Case, out: Output, rule: str) -> Judgement:
    j = judge_outputs(case, out, reference(case), oracles(case))
    if not j.ok and not j.inconclusive:
        j.implicated = [rule] + [r for r in j.implicated if r != rule]
    return j


def _inference(target: Target, case: Case) -> Judgement:
    """TRAIN-1: inference ignores dropout; two calls are identical."""
    a = target.adapter
    handle = _build(target, case)
    first = a.forward(handle, case.x, **_call(case))
    second = a.forward(handle, case.x, **_call(case))
    j = _against_reference(case, first, "TRAIN-1")
    f1, f2 = _flat(first), _flat(second)
    if not np.array_equal(f1, f2, equal_nan=True):
        diff = float(np.nanmax(np.abs(f1 - f2)))
        # an adapter may run the two calls through different code (keras-tensorflow: the first eagerly, the
        # second traced) that rounds differently; both within the error model of the reference is that, not
        # dropout, which moves outputs by far more (measured: 3e-16 apart in float64, Keras 3.8.0 impl1)
        if j.ok and _against_reference(case, second, "TRAIN-1").ok:
            j.metrics["two_calls_diff"] = diff
            return j
        return Judgement(False, f"two inference calls differ (max |diff| {diff:.3g}): dropout active in inference; "
                         f"case {case.brief()}", {**j.metrics, "two_calls_diff": diff}, j.kernel_path, j.precision,
                         implicated=["TRAIN-1"])
    return j


def _rate_zero(target: Target, case: Case) -> Judgement:
    """TRAIN-2: a training-mode call at rate 0 is the inference function."""
    handle = _build(target, case)
    return _against_reference(case, target.adapter.forward_training(handle, case.x, **_call(case)), "TRAIN-2")


def no_drop_chance(framework: str, case: Case) -> float | None:
    """TRAIN-3: the chance that no unit is dropped where the framework's text puts dropout (1 where it puts
    none); None for a masked case (not counted: a dropped unit of a fully masked row changes nothing). A
    recurrent mask acts only where a dropped h_{t-1} is non-zero (a second step, or a given initial state)."""
    cfg, (B, T, d) = case.config, case.x.shape
    p, q = _rates(case)
    if case.mask is not None:
        return None
    if framework == "torch":  # "on the outputs of each LSTM layer except the last layer"
        return (1.0 - p) ** (B * T * cfg.hidden_size * cfg.num_directions * (cfg.num_layers - 1))
    n_q = B * cfg.units if (T > 1 or case.initial_state is not None) else 0
    return (1.0 - p) ** (B * d) * (1.0 - q) ** n_q  # Keras: inputs and recurrent state of the first layer


def dropout_effect(framework: str, case: Case) -> float:
    """TRAIN-3: the ratio one sampled dropout mask shows on this case, by the error model that judges the
    framework: the float64 reference with the mask folded into the weights (the input columns of ``W`` and
    ``U`` that a dropped unit feeds zeroed, the kept ones scaled by 1 / (1 - rate)), placed where
    :func:`no_drop_chance` puts dropout, one mask per layer and direction shared by the rows and steps."""
    p, q = _rates(case)
    rng = np.random.default_rng(case.seed)

    def drop(a: np.ndarray, rate: float) -> np.ndarray:
        return a * ((rng.random(a.shape[-1]) >= rate) / (1.0 - rate)) if rate > 0 else a

    layers = []
    for l, dirs in enumerate(case.weights.layers):
        masked = []
        for lw in dirs:
            arrays = lw.arrays()
            if framework == "torch":  # on the outputs of every layer but the last: the next layer's inputs
                arrays["W"] = drop(lw.W, p) if l > 0 else lw.W
            elif l == 0:  # Keras: the first layer's inputs and recurrent state
                arrays.update(W=drop(lw.W, p), U=drop(lw.U, q))
            masked.append(LayerWeights(**arrays))
        layers.append(masked)
    res = lstm_forward(case.config, Weights(layers), case.x, mask=case.mask, initial_state=case.initial_state,
                       masked_output=case.masked_output, last_output=case.last_output, dtype="float64")
    seen = judge_outputs(case, Output(output=res.output, h=res.h, c=res.c), reference(case), oracles(case))
    ratio = seen.metrics.get("ratio")
    return float("inf") if ratio is None else float(ratio)


def _shape_problems(case: Case, got) -> list[str]:
    """GRAD-1 shapes of a training-mode gradient: x, every h0/c0, every canonical weight tensor."""
    cfg, (B, T, d) = case.config, case.x.shape
    problems = []
    if np.shape(got.x) != (B, T, d):
        problems.append(f"x {np.shape(got.x)} != {(B, T, d)}")
    for l in range(cfg.num_layers):
        for k in range(cfg.num_directions):
            for name, arr, want in (("h0", got.h0, (B, cfg.hidden_size)), ("c0", got.c0, (B, cfg.units))):
                if np.shape(arr[l][k]) != want:
                    problems.append(f"{name}[{l}][{k}] {np.shape(arr[l][k])} != {want}")
            wants = case.weights.layers[l][k].arrays()
            gots = got.weights.layers[l][k].arrays()
            for name, w in wants.items():
                if np.shape(gots.get(name)) != w.shape:
                    problems.append(f"{name}[{l}][{k}] {np.shape(gots.get(name))} != {w.shape}")
    return problems


def _runs(target: Target, case: Case) -> Judgement:
    """TRAIN-3: training-mode forward and gradient calls run with canonical shapes; dropout acts where the
    text puts it (or, where it puts none, the training output is the reference's)."""
    a = target.adapter
    handle = _build(target, case)
    out = a.forward_training(handle, case.x, **_call(case))
    g_out, g_h, g_c = cotangents(case)
    grads = a.gradients(handle, case.x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=initial_state_or_zeros(case),
                        mask=case.mask, masked_output=case.masked_output, training=True)
    vs_ref = judge_outputs(case, out, reference(case), oracles(case))  # shapes first, then the error model
    paths = dict(kernel_path=out.kernel_path, precision=out.precision)
    problems = _shape_problems(case, grads)
    if problems:
        return Judgement(False, f"training-mode gradient shapes: {'; '.join(problems)}; case {case.brief()}",
                         vs_ref.metrics, implicated=["TRAIN-3", "GRAD-1"], **paths)
    if "shapes differ" in vs_ref.message:
        return Judgement(False, f"training-mode output {vs_ref.message}", vs_ref.metrics, implicated=["TRAIN-3"],
                         **paths)
    chance = no_drop_chance(a.framework, case)
    metrics = {**vs_ref.metrics, "no_drop_chance": chance}
    if chance == 1.0:  # the text puts no dropout here: training mode is the inference function
        return _against_reference(case, out, "TRAIN-3")
    if chance is None or chance > NO_DROP_CHANCE or vs_ref.inconclusive:
        return Judgement(True, "", metrics, **paths)  # ran, shapes right; "acts" not decidable on this case
    if vs_ref.ok:
        metrics["dropout_effect"] = effect = dropout_effect(a.framework, case)
        if effect < DROPOUT_SEEN * errors.K:  # a dropout that acts could move this case too little to tell
            return Judgement(True, "", metrics, **paths)
        return Judgement(False, f"dropout did not act: the training-mode output matches the reference without "
                         f"dropout (ratio {vs_ref.metrics.get('ratio', float('nan')):.3g}) although no unit "
                         f"dropped has chance {chance:.2g} and a sampled mask moves the reference by ratio "
                         f"{effect:.3g}; case {case.brief()}", metrics,
                         implicated=["TRAIN-3"], **paths)
    return Judgement(True, "", metrics, **paths)


def zero_columns(dW: np.ndarray) -> tuple[int, int]:
    """TRAIN-4: ``(columns of exact zeros, columns)`` of a canonical weight gradient ``[4, u, k]``: a column is
    one gate's weights of one input unit."""
    zero = (dW == 0).all(axis=1)  # (4, k)
    return int(zero.sum()), int(zero.size)


def _mask_sharing(target: Target, case: Case) -> Judgement:
    """TRAIN-4: the reading of the dropout masks (per-sequence or per-step) read off the zero columns of the
    first layer's forward-direction W (input dropout) or U (recurrent dropout) gradient."""
    a = target.adapter
    want = MASK_READINGS.get(a.framework)
    if want is None:
        raise Unsupported(f"{a.name}: no text on how {a.framework}'s dropout masks are shared across timesteps")
    handle = _build(target, case)
    g_out, g_h, g_c = cotangents(case)
    grads = a.gradients(handle, case.x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=initial_state_or_zeros(case),
                        mask=None, masked_output=case.masked_output, training=True)
    p, q = _rates(case)
    tensor = "U" if q > 0 else "W"
    zeros, columns = zero_columns(getattr(grads.weights.layers[0][0], tensor))
    found = "per-sequence" if zeros > 0 else "per-step"
    metrics = {"zero_columns": zeros, "columns": columns, "tensor": tensor, "reading": found}
    if found == want:
        return Judgement(True, "", metrics, kernel_path=grads.kernel_path)
    return Judgement(False, f"dropout masks read '{found}' ({zeros} of {columns} columns of d{tensor} exactly zero "
                     f"at rate {q if q > 0 else p:g}), the text gives '{want}'; case {case.brief()}", metrics,
                     kernel_path=grads.kernel_path, implicated=["TRAIN-4"])


TRAIN_CHECKS = {"inference": _inference, "rate-zero": _rate_zero, "runs": _runs, "mask-sharing": _mask_sharing}


def judge_training(target: Target, case: Case) -> Judgement:
    """The TRAIN check named by ``case.extra['train_check']`` (one of :data:`TRAIN_CHECKS`)."""
    which = case.extra.get("train_check")
    if which not in TRAIN_CHECKS:
        raise ValueError(f"train_check={which!r}: expected one of {', '.join(TRAIN_CHECKS)}")
    return TRAIN_CHECKS[which](target, case)
