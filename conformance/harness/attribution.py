"""Rule attribution: which spec rules a failing value check *implicates*, from which output differs.

A property names the rules it exercises; when it fails, the reader needs the rule that is broken. The
comparison is split by part (output sequence, final h and c per layer and direction) and by position
(timestep, masked or valid step, direction half), and three cheap counterfactuals tell common slips
apart: the output reversed in time (DIR-2), the states of the unmasked run (MASK-1), h and c swapped
(STATE-4). What remains is the cell's arithmetic (GATE-*), narrowed by the options the case uses.
"""

from __future__ import annotations

import numpy as np

from reference import lstm_forward

from . import errors

__all__ = ["implicate", "implicate_gradients", "locate"]


def _parts(res) -> list[tuple[str, int, int, np.ndarray]]:
    """(part, layer, direction, array) in errors.flatten_outputs order."""
    out = []
    outputs = res.output if isinstance(res.output, (tuple, list)) else [res.output]
    for d, o in enumerate(outputs):
        out.append(("output", -1, d, np.asarray(o, np.float64)))
    for name in ("h", "c"):
        for layer, dirs in enumerate(getattr(res, name)):
            for d, a in enumerate(dirs):
                out.append((name, layer, d, np.asarray(a, np.float64)))
    return out


def locate(case, res, index: int | None) -> dict:
    """Where flat ``index`` (errors.flatten_outputs order) lies: part, layer, direction, batch, timestep, unit."""
    if index is None:
        return {}
    for part, layer, d, a in _parts(res):
        if index < a.size:
            pos = np.unravel_index(index, a.shape)
            where = {"part": part, "batch": int(pos[0]), "unit": int(pos[-1])}
            if part == "output":
                where["timestep"] = int(pos[1]) if a.ndim == 3 else None
                half = a.shape[-1] // 2
                if case.config.bidirectional and case.config.effective_merge_mode == "concat":
                    where["direction"] = int(pos[-1] >= half)
                elif case.config.effective_merge_mode == "none":
                    where["direction"] = d
            else:
                where.update(layer=layer, direction=d)
            return where
        index -= a.size
    return {}


def _bad(impl_part: np.ndarray, ref_part: np.ndarray, denom: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return ~(np.abs(impl_part - ref_part) <= errors.K * denom)


def _close(a, b, denom: float) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and not _bad(a, b, denom).any()


def implicate(case, out, ref64, cmp: errors.Comparison) -> tuple[list[str], dict]:
    """(implicated rules, where the worst difference lies) for a failed value comparison."""
    cfg = case.config
    denom = max(cmp.err_oracle, cmp.floor) if np.isfinite(cmp.err_oracle) else cmp.floor
    where = locate(case, ref64, cmp.worst_index)
    impl_parts, ref_parts = _parts(out), _parts(ref64)
    bad = {(p, layer, d) for (p, layer, d, a), (_, _, _, r) in zip(impl_parts, ref_parts)
           if a.shape != r.shape or _bad(a, r, denom).any()}
    states_bad = {k for k in bad if k[0] != "output"}
    masked = case.mask is not None and not case.mask.all()
    rules: list[str] = []

    if not states_bad:  # only the output sequence is wrong: how it is read out, not the recurrence
        y, r = np.asarray(_parts(out)[0][3]), np.asarray(ref_parts[0][3])
        if cfg.go_backwards and cfg.return_sequences and _close(y[:, ::-1], r, denom):
            rules.append("DIR-2")
        elif masked and (cfg.return_sequences is False or _only_masked_steps(case, y, r, denom)):
            rules.append("MASK-2")
        elif cfg.bidirectional:
            rules.append("BIDI-1" if where.get("direction") == 1 else "BIDI-2")
        else:
            rules.append("PROJ-1" if cfg.proj_size else "GATE-4")
        return rules, where

    if _swapped_states(out, ref64, denom):
        return ["STATE-4"], where
    if masked and _close_states(out, lstm_forward(cfg, case.weights, case.x, initial_state=case.initial_state),
                                denom):
        return ["MASK-1"], where  # the states are those of a run that ignored the mask
    layers = sorted({layer for _, layer, _ in states_bad})
    if layers and layers[0] > 0:
        rules.append("STACK-1")
    if cfg.bidirectional and {d for *_, d in states_bad} == {1}:
        rules.append("BIDI-1")
    only_h = all(p == "h" for p, *_ in states_bad)
    if only_h:
        rules.append("PROJ-1" if cfg.proj_size else "GATE-4")
    for option, rule in (("peepholes", "PEEP-1"), ("input_forget", "IFG-1")):
        if getattr(cfg, option):
            rules.append(rule)
    if cfg.cell_clip is not None:
        rules.append("CLIP-1")
    if case.initial_state is not None:
        rules.append("STATE-1")
    if not only_h:
        rules += ["GATE-1", "GATE-3"]
    if (cfg.activation, cfg.recurrent_activation) != ("tanh", "sigmoid"):
        rules += ["GATE-2", "ACT-30"]
    return list(dict.fromkeys(rules)), where


def _only_masked_steps(case, y, r, denom) -> bool:
    if y.ndim != 3 or y.shape != r.shape:
        return False
    wrong = _bad(y, r, denom).any(axis=-1)  # (B, T)
    mask = case.mask[:, ::-1] if case.config.go_backwards else case.mask
    return bool(wrong.any()) and not (wrong & mask).any()


def _swapped_states(out, ref64, denom) -> bool:
    try:
        return _close_states(type(out)(output=ref64.output, h=out.c, c=out.h), ref64, denom) and not _close(
            np.concatenate([np.ravel(a) for dirs in out.h for a in dirs]),
            np.concatenate([np.ravel(a) for dirs in ref64.h for a in dirs]), denom)
    except (ValueError, TypeError):
        return False


def _close_states(res, ref, denom) -> bool:
    return all(_close(a, b, denom) for name in ("h", "c") for la, lb in zip(getattr(res, name), getattr(ref, name))
               for a, b in zip(la, lb))


def implicate_gradients(case, impl: dict, ref: dict, cmp) -> tuple[list[str], dict]:
    """(implicated rules, where) for a failed gradient comparison (gradient_errors.GradientComparison over the
    tensors of gradient_errors.gradient_tensors). GRAD-2 when the input gradient is wrong at a masked step
    (it must be exactly 0 there), or the case is masked and every input gradient at a valid step is right
    while another tensor is wrong (what a masked step passed on or added); GRAD-3 for chained calls; GRAD-1
    otherwise; and GRAD-4 when a clip is in play. ``where`` names the worst tensor and, for the input gradient,
    the batch row, the timestep, whether it is masked and the range of timesteps that are wrong."""
    cfg = case.config
    bad = [n for n, c in cmp.tensors.items() if not c.inconclusive and not c.passed]
    where: dict = {"tensor": cmp.worst}
    rules: list[str] = []
    if case.extra.get("split"):
        rules.append("GRAD-3")
    mask = case.mask
    masked = mask is not None and not mask.all()
    dx, rx = impl.get("x"), ref.get("x")
    if dx is not None and np.shape(dx) == np.shape(rx):
        c = cmp.tensors["x"]
        denom = max(c.err_oracle, c.floor) if np.isfinite(c.err_oracle) else c.floor
        wrong = _bad(np.asarray(dx, np.float64), rx, denom).any(axis=-1)  # (B, T)
        if wrong.any():
            steps = np.flatnonzero(wrong.any(axis=0))
            where["x_wrong_steps"] = f"{int(steps[0])}..{int(steps[-1])} of {wrong.shape[1]}"
            if cmp.worst == "x":
                diff = np.abs(np.asarray(dx, np.float64) - rx)
                b, t, _ = np.unravel_index(int(np.nanargmax(np.where(np.isnan(diff), np.inf, diff))), diff.shape)
                where.update(batch=int(b), timestep=int(t))
                if mask is not None:
                    where["masked"] = not bool(mask[b, t])
        if masked and ((wrong & ~mask).any() or (not (wrong & mask).any() and bad != ["x"])):
            rules.append("GRAD-2")
    if not rules:
        rules.append("GRAD-1")
    if cfg.cell_clip is not None:
        rules.append("GRAD-4")
    if "forward" in bad:
        where["forward"] = "the call's outputs differ too"
    return list(dict.fromkeys(rules)), where
