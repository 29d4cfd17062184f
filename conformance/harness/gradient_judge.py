"""Running and judging a gradient check (spec/gradients.md GRAD-1..GRAD-4): the adapter's own autodiff of the
GRAD-1 loss against the reference backward pass, by the error model per gradient tensor (:mod:`.gradient_errors`).

The cotangents come from the case (``case.extra['cotangent_seed']``), so a repro blob replays the same loss;
the float64 reference, the oracles and the kink test are memoised with the forward references (:mod:`.memo`).
"""

from __future__ import annotations

import numpy as np

from reference import LayerWeights, Weights, lstm_backward
from reference.forward import normalise_initial_state, prepare_call, run_layers

from ..adapters.base import GradientOutput, Output, Unsupported
from . import errors, gradient_errors
from .attribution import implicate_gradients
from .judge import _MEMO, Judgement, Target, reference
from .memo import case_key
from .strategies import Case

__all__ = ["cotangents", "initial_state_or_zeros", "gradient_reference", "gradient_oracles", "kink_reason",
           "judge_gradients", "judge_gradient_output"]


def cotangents(case: Case):
    """GRAD-1: the loss weights ``(g_out, g_h, g_c)`` of a case, drawn from ``case.extra['cotangent_seed']``
    (standard normal, float64; ``g_out`` shaped as the reference output, a pair for merge_mode 'none';
    ``g_h[l][d]`` (B, H), ``g_c[l][d]`` (B, u)). ``case.extra['cotangents']`` 'output' or 'states' zeroes the
    other part (the loss reads only the outputs, or only the final states)."""
    cfg, B = case.config, case.x.shape[0]
    rng = np.random.default_rng([int(case.extra.get("cotangent_seed", case.seed)), 0xc07a])
    out = reference(case).output
    g_out = tuple(rng.normal(size=o.shape) for o in out) if isinstance(out, tuple) else rng.normal(size=out.shape)
    g_h = [[rng.normal(size=(B, cfg.hidden_size)) for _ in range(cfg.num_directions)] for _ in range(cfg.num_layers)]
    g_c = [[rng.normal(size=(B, cfg.units)) for _ in range(cfg.num_directions)] for _ in range(cfg.num_layers)]
    which = case.extra.get("cotangents", "all")
    if which == "output":
        g_h, g_c = ([[np.zeros_like(a) for a in dirs] for dirs in g] for g in (g_h, g_c))
    elif which == "states":
        g_out = tuple(np.zeros_like(g) for g in g_out) if isinstance(g_out, tuple) else np.zeros_like(g_out)
    return g_out, g_h, g_c


def initial_state_or_zeros(case: Case) -> list:
    """The case's initial state, or zeros: Adapter.gradients always gets one, so its gradient exists."""
    cfg = case.config
    return normalise_initial_state(cfg, case.initial_state, case.x.shape[0], np.float64)


def _gradient_key(case: Case, what: str) -> str:
    return case_key(case, f"{what}-{case.extra.get('cotangent_seed', case.seed)}-{case.extra.get('cotangents', 'all')}")


def gradient_reference(case: Case):
    """GRAD-1: ``lstm_backward`` in float64 on the case with its cotangents (memoised)."""
    def run():
        g_out, g_h, g_c = cotangents(case)
        return lstm_backward(case.config, case.weights, case.x, g_out=g_out, g_h=g_h, g_c=g_c, mask=case.mask,
                             initial_state=initial_state_or_zeros(case), masked_output=case.masked_output,
                             last_output=case.last_output, dtype="float64")
    return _MEMO.get(_gradient_key(case, "gradient-reference"), run)


def _oracle_inputs(case: Case) -> list[tuple]:
    g_out, g_h, g_c = cotangents(case)
    return gradient_errors.gradient_oracle_inputs(case.config, case.weights, case.x, g_out=g_out, g_h=g_h, g_c=g_c,
                                                  initial_state=initial_state_or_zeros(case), seed=case.seed)


def gradient_oracles(case: Case) -> list:
    """GRAD-1: the reference backward pass on each equally valid rounding of the case (memoised)."""
    def run():
        with np.errstate(all="ignore"):
            return [lstm_backward(case.config, w, x, g_out=go, g_h=gh, g_c=gc, mask=case.mask, initial_state=init,
                                  masked_output=case.masked_output, last_output=case.last_output,
                                  dtype=case.config.dtype) for w, x, init, go, gh, gc in _oracle_inputs(case)]
    return _MEMO.get(_gradient_key(case, "gradient-oracles"), run)


def _tapes(case: Case, weights, x, init, dtype: str) -> list:
    """The forward run's per-step intermediates (reference.forward.DirectionTape per layer and direction)."""
    cfg = case.config
    dt, x, mask = prepare_call(cfg, weights, x, case.mask, None, case.masked_output, case.last_output,
                               "keep-initial", dtype)
    tapes: list = []
    with np.errstate(all="ignore"):
        run_layers(cfg, weights.astype(dt), x, mask, normalise_initial_state(cfg, init, x.shape[0], dt),
                   case.masked_output, case.last_output, "keep-initial", tapes)
    return tapes


def kink_reason(case: Case) -> str:
    """GRAD-1/GRAD-4: why the case is inconclusive near a kink, or '' (memoised; free without kinks)."""
    cfg = case.config
    if not (cfg.act.kinks or cfg.recurrent_act.kinks or cfg.cell_clip is not None):
        return ""

    def run():
        tape64 = _tapes(case, case.weights, case.x, initial_state_or_zeros(case), "float64")
        others = [_tapes(case, w, x, init, cfg.dtype) for w, x, init, *_ in _oracle_inputs(case)]
        return gradient_errors.near_kink(cfg, tape64, others, cfg.dtype)
    return _MEMO.get(_gradient_key(case, "gradient-kinks"), run)


def _tensors(g) -> dict:
    return gradient_errors.gradient_tensors(g.x, g.h0, g.c0, g.weights,
                                            g.output if isinstance(g, GradientOutput) else g.forward)


def judge_gradient_output(case: Case, got: GradientOutput, ref64, oracles: list, **extra) -> Judgement:
    """GRAD-1: every gradient tensor (and the call's outputs) by the error model per tensor."""
    impl, ref = _tensors(got), _tensors(ref64)
    cmp = gradient_errors.compare_gradients(impl, ref, [_tensors(o) for o in oracles], case.config.dtype)
    paths = dict(kernel_path=got.kernel_path or got.output.kernel_path, precision=got.output.precision)
    metrics = {**cmp.to_dict(), **extra}
    kink = kink_reason(case) if not cmp.inconclusive else ""
    if cmp.inconclusive or kink:
        why = cmp.inconclusive or kink
        rule = why.split(":")[0]
        return Judgement(False, why, metrics, inconclusive=why, implicated=[rule], **paths)
    if cmp.passed:
        return Judgement(True, "", metrics, **paths)
    rules, where = implicate_gradients(case, impl, ref, cmp)
    metrics["where"] = where
    c = cmp.tensors[cmp.worst]
    over = [n for n, t in cmp.tensors.items() if not t.inconclusive and not t.passed]
    at = ", ".join(f"{k} {v}" for k, v in where.items() if v is not None and k != "tensor")
    message = (f"gradient {cmp.worst}: ratio {c.ratio:.3g} > K={errors.K:g} (err_impl {c.err_impl:.3g}, "
               f"err_oracle {c.err_oracle:.3g}, floor {c.floor:.3g}){'; ' + c.note if c.note else ''}"
               f"{'; worst at ' + at if at else ''}; over K: {', '.join(over)}; case {case.brief()}")
    return Judgement(False, message, metrics, implicated=rules, **paths)


def judge_gradients(target: Target, case: Case, *, training: bool = False) -> Judgement:
    """GRAD-1/GRAD-2: the adapter's own autodiff of the case's loss vs the reference backward pass; with
    ``case.extra['split']`` GRAD-3: two chained calls (carried state, the second call's h0/c0 gradients as
    the first call's g_h/g_c) vs one call over the whole sequence."""
    a, cfg = target.adapter, case.config
    reason = a.gradient_unsupported_reason(cfg, target.variant, target.device)
    if reason:
        raise Unsupported(reason)
    handle = a.build(cfg, case.weights, variant=target.variant, device=target.device)
    g_out, g_h, g_c = cotangents(case)
    init = initial_state_or_zeros(case)
    split = int(case.extra.get("split") or 0)
    call = dict(mask=case.mask, masked_output=case.masked_output, training=training)
    if not split:
        got = a.gradients(handle, case.x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=init, **call)
        return judge_gradient_output(case, got, gradient_reference(case), gradient_oracles(case))
    if not cfg.return_sequences or cfg.bidirectional or cfg.go_backwards or case.mask is not None:
        raise ValueError("a chained gradient check needs return_sequences, one forward direction and no mask")
    first = a.forward(handle, case.x[:, :split], initial_state=init, masked_output=case.masked_output)
    carried = [[(np.asarray(h, np.float64), np.asarray(c, np.float64)) for h, c in zip(hs, cs)]
               for hs, cs in zip(first.h, first.c)]
    second = a.gradients(handle, case.x[:, split:], g_out=g_out[:, split:], g_h=g_h, g_c=g_c, initial_state=carried,
                         **call)
    g_h1 = [[np.asarray(v, np.float64) for v in dirs] for dirs in second.h0]
    g_c1 = [[np.asarray(v, np.float64) for v in dirs] for dirs in second.c0]
    one = a.gradients(handle, case.x[:, :split], g_out=g_out[:, :split], g_h=g_h1, g_c=g_c1, initial_state=init,
                      **call)
    joined = Weights([[LayerWeights(**{k: np.asarray(v, np.float64) + np.asarray(getattr(w2, k), np.float64)
                                       for k, v in w1.arrays().items()})
                       for w1, w2 in zip(d1, d2)] for d1, d2 in zip(one.weights.layers, second.weights.layers)])
    out = Output(output=np.concatenate([np.asarray(one.output.output, np.float64),
                                        np.asarray(second.output.output, np.float64)], axis=1),
                 h=second.output.h, c=second.output.c, kernel_path=second.output.kernel_path,
                 precision=second.output.precision)
    got = GradientOutput(output=out, x=np.concatenate([np.asarray(one.x, np.float64),
                                                       np.asarray(second.x, np.float64)], axis=1),
                         h0=one.h0, c0=one.c0, weights=joined, kernel_path=second.kernel_path)
    return judge_gradient_output(case, got, gradient_reference(case), gradient_oracles(case), split=split)
