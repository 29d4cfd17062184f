"""Cross-check of the reference against implementations nobody here wrote: ``onnx.reference`` (the ONNX
project's numpy evaluator) and ONNX Runtime's CPU LSTM kernel, on ONNX LSTM nodes built with
``onnx.helper`` from ``reference.to_onnx`` weights (random, asymmetric across gates, two biases).

Output normalisation (LAYOUT-4, SHAPE-*): ONNX returns Y[T, D, B, H] (layout 0) or Y[B, T, D, H]
(layout 1) with the reverse direction in *original* time order; the reference's go_backwards returns
processing order (DIR-2), so its output is flipped before comparing; ONNX bidirectional is the
reference's bidirectional layer with merge_mode 'none' (BIDI-1).

What each oracle covers (read from onnx/reference/ops/op_lstm.py of onnx 1.23 and run against ORT 1.32):
- ``onnx.reference`` implements directions, layouts, B, P, initial_h/initial_c, but its ``_run``
  accepts and ignores ``sequence_lens``, ``clip``, ``input_forget``, ``activations``,
  ``activation_alpha`` and ``activation_beta`` (fixed sigmoid/tanh/tanh). Those attributes are
  therefore checked against ONNX Runtime.
- ONNX Runtime's CPU LSTM refuses float64 ("LSTM operator does not support double yet") and layout 1
  ("Batchwise recurrent operations (layout == 1) are not supported"), so ORT runs float32 / layout 0,
  compared with the float64 reference within ``50 * |ref32 - ref64| + 1e-6`` (the reference's own
  float32 rounding error scaled, plus a floor).
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

from reference import Config, from_onnx_activations, lstm_forward, random_weights, to_onnx  # noqa: E402
from reference import parse_activation as parse  # noqa: E402
from ref_cases import assert_close  # noqa: E402

INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P")
OPSET = 14  # LSTM-14 adds `layout`


def lstm_model(hidden: int, elem: int, feed: dict[str, np.ndarray], **attrs) -> onnx.ModelProto:
    """A one-node graph ``LSTM(X, W, R, [B], [sequence_lens], [initial_h], [initial_c], [P])`` whose
    inputs are the arrays of ``feed`` (absent optional inputs are empty names)."""
    names = [n if n in feed else "" for n in INPUTS]
    while names[-1] == "":
        names.pop()
    node = helper.make_node("LSTM", names, ["Y", "Y_h", "Y_c"], hidden_size=hidden, **attrs)
    ins = [helper.make_tensor_value_info(n, TensorProto.INT32 if n == "sequence_lens" else elem, feed[n].shape)
           for n in names if n]
    outs = [helper.make_tensor_value_info(n, elem, [None] * r) for n, r in (("Y", 4), ("Y_h", 3), ("Y_c", 3))]
    model = helper.make_model(helper.make_graph([node], "lstm", ins, outs),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def onnx_feed(cfg: Config, w, x, layout: int, dtype, init=None, lengths=None) -> dict:
    """ONNX inputs from canonical weights / batch-major x / ``[[(h0, c0)] * D]``."""
    feed = {k: v.astype(dtype) for k, v in to_onnx(w, cfg).items()}
    feed["X"] = np.ascontiguousarray(x.transpose(1, 0, 2) if layout == 0 else x).astype(dtype)
    if init is not None:
        h0 = np.stack([hc[0] for hc in init[0]])  # (D, B, H)
        c0 = np.stack([hc[1] for hc in init[0]])
        if layout == 1:
            h0, c0 = h0.transpose(1, 0, 2), c0.transpose(1, 0, 2)
        feed["initial_h"], feed["initial_c"] = h0.astype(dtype), c0.astype(dtype)
    if lengths is not None:
        feed["sequence_lens"] = np.asarray(lengths, np.int32)
    return feed


def from_onnx_outputs(Y, Yh, Yc, layout: int):
    """-> per direction: (y[B, T, H] in original time order, h[B, H], c[B, u])."""
    D = Yh.shape[0] if layout == 0 else Yh.shape[1]
    out = []
    for d in range(D):
        if layout == 0:
            out.append((Y[:, d].transpose(1, 0, 2), Yh[d], Yc[d]))
        else:
            out.append((Y[:, :, d], Yh[:, d], Yc[:, d]))
    return out


def reference_outputs(cfg: Config, r):
    """The reference's result in the same normalised form (original time order per direction)."""
    if cfg.bidirectional:
        ys = list(r.output)  # merge_mode 'none': (forward, backward), both in original time order
    elif cfg.go_backwards:
        ys = [r.output[:, ::-1]]  # DIR-2: processing order -> original order
    else:
        ys = [r.output]
    return [(ys[d], r.h[0][d], r.c[0][d]) for d in range(cfg.num_directions)]


def config_for(direction: str, **kw) -> Config:
    return Config(return_sequences=True, bidirectional=direction == "bidirectional",
                  merge_mode="none" if direction == "bidirectional" else None,
                  go_backwards=direction == "reverse", **kw)


def random_init(cfg: Config, rng, B: int):
    return [[(rng.normal(0, 0.5, (B, cfg.hidden_size)), rng.normal(0, 0.5, (B, cfg.units)))
             for _ in range(cfg.num_directions)]]


# ---- onnx.reference (float64, exact to rounding) ---------------------------------------------------------

@pytest.mark.parametrize("with_init", [False, True], ids=["zero-state", "initial-state"])
@pytest.mark.parametrize("peepholes", [False, True], ids=["", "peepholes"])
@pytest.mark.parametrize("layout", [0, 1], ids=["layout0", "layout1"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_matches_onnx_reference_evaluator(direction, layout, peepholes, with_init):
    """GATE-1..GATE-4, PEEP-1, DIR-1, DIR-2, BIDI-1, STATE-1, LAYOUT-4: float64 parity with
    onnx.reference's LSTM to 1e-12, two biases (Wb and Rb both non-zero), three random configs per case."""
    for rep in range(3):
        rng = np.random.default_rng([rep, layout, peepholes, with_init, len(direction)])
        d, u, B, T = (int(v) for v in rng.integers(1, [5, 5, 4, 6]))
        cfg = config_for(direction, input_dim=d, units=u, bias_mode="double", peepholes=peepholes)
        w = random_weights(cfg, rng, scale=float(rng.choice([0.5, 1.0, 2.0])))
        x = rng.normal(0, 1, (B, T, d))
        init = random_init(cfg, rng, B) if with_init else None
        feed = onnx_feed(cfg, w, x, layout, np.float64, init)
        model = lstm_model(u, TensorProto.DOUBLE, feed, direction=direction, layout=layout)
        got = from_onnx_outputs(*ReferenceEvaluator(model).run(None, feed), layout)
        ref = reference_outputs(cfg, lstm_forward(cfg, w, x, initial_state=init))
        for dd, ((y, h, c), (ry, rh, rc)) in enumerate(zip(got, ref, strict=True)):
            assert_close(y, ry, 1e-12, f"{direction} d{dd} Y ({cfg})")
            assert_close(h, rh, 1e-12, f"{direction} d{dd} Y_h")
            assert_close(c, rc, 1e-12, f"{direction} d{dd} Y_c")


def test_matches_onnx_reference_without_bias():
    """GATE-1, LAYOUT-4: use_bias=False is an ONNX node without B (B defaults to zeros)."""
    rng = np.random.default_rng(11)
    cfg = config_for("bidirectional", input_dim=3, units=4, use_bias=False)
    w, x = random_weights(cfg, rng), rng.normal(0, 1, (2, 5, 3))
    feed = onnx_feed(cfg, w, x, 0, np.float64)
    assert "B" not in feed
    model = lstm_model(4, TensorProto.DOUBLE, feed, direction="bidirectional")
    got = from_onnx_outputs(*ReferenceEvaluator(model).run(None, feed), 0)
    for (y, h, c), (ry, rh, rc) in zip(got, reference_outputs(cfg, lstm_forward(cfg, w, x)), strict=True):
        assert_close(y, ry, 1e-12, "Y")
        assert_close(c, rc, 1e-12, "Y_c")


# ---- ONNX Runtime (float32) for what onnx.reference ignores ---------------------------------------------

ort = pytest.importorskip("onnxruntime")


def run_ort(cfg: Config, w, x, direction: str, init=None, lengths=None, **attrs):
    feed = onnx_feed(cfg, w, x, 0, np.float32, init, lengths)
    model = lstm_model(cfg.units, TensorProto.FLOAT, feed, direction=direction, **attrs)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return from_onnx_outputs(*sess.run(None, feed), 0)


def compare_with_ort(cfg: Config, w, x, direction: str, *, init=None, lengths=None, masked_output="carry",
                     empty_rows="keep-initial", **attrs):
    """ORT float32 vs reference float64 within 50 * |ref32 - ref64| + 1e-6; returns the float64 result."""
    kw = dict(initial_state=init, lengths=None if lengths is None else np.asarray(lengths),
              masked_output=masked_output, empty_rows=empty_rows)
    r64 = lstm_forward(cfg, w, x, **kw)
    r32 = lstm_forward(cfg, w, x, dtype="float32", **kw)
    ref64, ref32 = reference_outputs(cfg, r64), reference_outputs(cfg, r32)
    got = run_ort(cfg, w, x, direction, init, lengths, **attrs)
    for dd, (g, a, b) in enumerate(zip(got, ref64, ref32, strict=True)):
        for name, gv, av, bv in zip(("Y", "Y_h", "Y_c"), g, a, b):
            tol = 50 * float(np.max(np.abs(bv.astype(np.float64) - av))) + 1e-6
            assert_close(gv, av, tol, f"ORT {direction} d{dd} {name} ({attrs}, lengths={lengths})")
    return r64


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_sequence_lens_matches_ort(direction):
    """MASK-1, MASK-2 ('zero'), MASK-3, DIR-2, BIDI-1: ONNX sequence_lens == the reference with right-padded
    ``lengths`` and masked_output='zero': Y is 0 past each length, Y_h/Y_c are the state at the last valid
    step, and the reverse direction starts at each sequence's last valid element.
    onnx.reference ignores sequence_lens, hence ORT (float32).
    For a length-0 row (the ONNX text is silent) ORT 1.32 returns Y_h = Y_c = 0: the MASK-3 reading
    'zero-state', not this spec's convention 'keep-initial'; both agree with a zero initial state."""
    for rep in range(3):
        rng = np.random.default_rng([rep, len(direction)])
        d, u, B, T = 3, int(rng.integers(1, 5)), 4, 6
        cfg = config_for(direction, input_dim=d, units=u, bias_mode="double", peepholes=bool(rep % 2))
        w, x = random_weights(cfg, rng), rng.normal(0, 1, (B, T, d))
        lengths = rng.integers(1, T + 1, B)
        lengths[0] = T
        compare_with_ort(cfg, w, x, direction, init=random_init(cfg, rng, B), lengths=lengths, masked_output="zero")
        lengths[1] = 0
        r = compare_with_ort(cfg, w, x, direction, lengths=lengths, masked_output="zero")
        assert np.all(r.c[0][0][1] == 0)
        init = random_init(cfg, rng, B)
        compare_with_ort(cfg, w, x, direction, init=init, lengths=lengths, masked_output="zero",
                         empty_rows="zero-state")
        with pytest.raises(AssertionError, match="Y_h"):  # the convention keeps initial_h for the length-0 row
            compare_with_ort(cfg, w, x, direction, init=init, lengths=lengths, masked_output="zero")


@pytest.mark.parametrize("peepholes", [False, True], ids=["no-peepholes", "peepholes"])
@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_clip_matches_ort(direction, peepholes):
    """CLIP-1, PEEP-1: ONNX ``clip`` as ONNX Runtime computes it. onnx.reference ignores clip.

    ORT 1.32 CPU (uni_directional_lstm.cc) follows the reading 'gate-inputs': every gate's activation input
    is clipped to [-clip, clip] *after* the peephole term is added (i and f with c_{t-1}, o with c_t), and
    c_t is clipped neither in Y_c nor before h's activation. The ONNX text ("applied to the input of
    activations") read literally also clips h's input c_t ('gate-inputs-and-cell', the spec's reading),
    which ORT does not: the CLIP-1 finding (microsoft/onnxruntime#27224). The case is chosen so that
    clipping changes the result and |c_t| exceeds the clip."""
    rng = np.random.default_rng([3, peepholes, len(direction)])
    cfg = config_for(direction, input_dim=3, units=4, bias_mode="double", peepholes=peepholes)
    w, x = random_weights(cfg, rng, scale=3.0), rng.normal(0, 2, (3, 20, 3))
    init = random_init(cfg, rng, 3)
    for clip in (0.5, 1.0, 3.0):
        clipped = cfg.replace(cell_clip=clip, clip_reading="gate-inputs")
        r = compare_with_ort(clipped, w, x, direction, init=init, clip=clip)
        with pytest.raises(AssertionError, match="ORT"):  # the literal reading is not what ORT computes
            literal = clipped.replace(clip_reading="gate-inputs-and-cell")
            compare_with_ort(literal, w, x, direction, init=init, clip=clip)
        unclipped = lstm_forward(cfg, w, x, initial_state=init)
        assert np.max(np.abs(np.asarray(unclipped.output) - np.asarray(r.output))) > 1e-3, "clip must bite"
        if clip < 3.0:
            assert max(np.max(np.abs(c)) for c in r.c[0]) > clip, "c_t must exceed the clip somewhere"


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_input_forget_matches_ort(direction):
    """IFG-1: ONNX input_forget=1 couples the gates; ORT computes the reading 'f-from-i' (f = 1 - i), not
    'i-from-f' (the text does not say which; onnx.reference ignores the attribute)."""
    rng = np.random.default_rng([5, len(direction)])
    cfg = config_for(direction, input_dim=3, units=4, bias_mode="double", input_forget=True, peepholes=True)
    w, x = random_weights(cfg, rng), rng.normal(0, 1, (2, 7, 3))
    init = random_init(cfg, rng, 2)
    r = compare_with_ort(cfg, w, x, direction, init=init, input_forget=1)
    uncoupled = lstm_forward(cfg.replace(input_forget=False), w, x, initial_state=init)
    assert not np.allclose(np.asarray(uncoupled.output), np.asarray(r.output), atol=1e-3)
    with pytest.raises(AssertionError, match="ORT"):
        compare_with_ort(cfg.replace(input_forget_reading="i-from-f"), w, x, direction, init=init, input_forget=1)


# ONNX activations list (f, g, h) with alpha/beta consumed in order by the functions that take them (the ACT-30
# reading 'per-function') -> the reference's recurrent_activation (f) and activation (g and h: the reference has
# one for both). The expected registry strings are written out and also derived by from_onnx_activations.
ACTIVATION_CASES = [
    (["HardSigmoid", "Tanh", "Tanh"], None, None, "onnx_hard_sigmoid", "tanh"),
    (["HardSigmoid", "Tanh", "Tanh"], [0.3], [0.4], "onnx_hard_sigmoid(alpha=0.3, beta=0.4)", "tanh"),
    (["Sigmoid", "ScaledTanh", "ScaledTanh"], [1.5, 1.5], [0.5, 0.5], "sigmoid", "onnx_scaled_tanh(alpha=1.5, beta=0.5)"),
    (["HardSigmoid", "ScaledTanh", "ScaledTanh"], [0.3, 1.5, 1.5], [0.4, 0.5, 0.5],
     "onnx_hard_sigmoid(alpha=0.3, beta=0.4)", "onnx_scaled_tanh(alpha=1.5, beta=0.5)"),
    (["Sigmoid", "Softsign", "Softsign"], None, None, "sigmoid", "softsign"),
    (["Sigmoid", "Relu", "Relu"], None, None, "sigmoid", "relu"),
    (["Sigmoid", "Affine", "Affine"], [0.7, 0.7], [0.1, 0.1], "sigmoid", "onnx_affine(alpha=0.7, beta=0.1)"),
    (["Sigmoid", "LeakyRelu", "LeakyRelu"], [0.1, 0.1], None, "sigmoid", "onnx_leaky_relu(alpha=0.1)"),
    (["Sigmoid", "ThresholdedRelu", "ThresholdedRelu"], [0.2, 0.2], None, "sigmoid", "onnx_thresholded_relu(alpha=0.2)"),
    (["Sigmoid", "Elu", "Elu"], [0.8, 0.8], None, "sigmoid", "onnx_elu(alpha=0.8)"),
    (["Sigmoid", "Softplus", "Softplus"], None, None, "sigmoid", "softplus"),
]


@pytest.mark.parametrize("acts, alpha, beta, ract, act", ACTIVATION_CASES, ids=[
    "-".join(c[0]) + ("-params" if c[1] else "") for c in ACTIVATION_CASES])
def test_activations_match_ort(acts, alpha, beta, ract, act):
    """GATE-2, ACT-2, ACT-5, ACT-7, ACT-8, ACT-20..ACT-25: ONNX ``activations`` (f, g, h) with
    activation_alpha/beta == the reference's recurrent_activation (f) and activation (g and h).
    onnx.reference ignores these attributes (fixed sigmoid/tanh), hence ORT."""
    f, g, h = from_onnx_activations(acts, alpha, beta, order="per-function")
    assert (str(f), str(g)) == (str(parse(ract)), str(parse(act))) and g == h
    for direction in ("forward", "bidirectional"):
        rng = np.random.default_rng(len(ract) + len(act))
        cfg = config_for(direction, input_dim=3, units=4, bias_mode="double", recurrent_activation=ract, activation=act)
        w, x = random_weights(cfg, rng), rng.normal(0, 1, (2, 5, 3))
        attrs = {"activations": acts * cfg.num_directions}
        if alpha:
            attrs["activation_alpha"] = alpha * cfg.num_directions
        if beta:
            attrs["activation_beta"] = beta * cfg.num_directions
        r = compare_with_ort(cfg, w, x, direction, **attrs)
        # the attribute matters: the default sigmoid/tanh LSTM gives a different answer
        default = lstm_forward(cfg.replace(recurrent_activation="sigmoid", activation="tanh"), w, x)
        assert not np.allclose(np.asarray(default.output), np.asarray(r.output), atol=1e-4)


def test_activation_parameter_order_is_per_function_in_ort():
    """ACT-30: ORT 1.32 consumes activation_alpha/beta per function that takes them ('per-function'), not one
    value per slot ('per-slot'). [Sigmoid, ScaledTanh, ScaledTanh] with alpha [1.5, 2.0, 2.0], beta 0.5 each:
    'per-slot' reads g = h = ScaledTanh(2.0, 0.5) (slot 0, Sigmoid, ignores its 1.5); 'per-function' reads
    g = ScaledTanh(1.5, 0.5), h = ScaledTanh(2.0, 0.5), which ORT computes (the canonical config cannot hold
    g != h, so only the 'per-slot' reading is compared, and ORT differs from it). The 'per-function' side is
    test_activations_match_ort: e.g. [Sigmoid, LeakyRelu, LeakyRelu] with alpha [0.1, 0.1]."""
    acts, alpha, beta = ["Sigmoid", "ScaledTanh", "ScaledTanh"], [1.5, 2.0, 2.0], [0.5, 0.5, 0.5]
    f, g, h = from_onnx_activations(acts, alpha, beta, order="per-function")
    assert dict(g.params)["alpha"] == 1.5 and dict(h.params)["alpha"] == 2.0
    f, g, h = from_onnx_activations(acts, alpha, beta, order="per-slot")
    assert g == h and dict(g.params) == {"alpha": 2.0, "beta": 0.5}
    rng = np.random.default_rng(21)
    cfg = config_for("forward", input_dim=3, units=4, bias_mode="double", recurrent_activation=str(f),
                     activation=str(g))
    w, x = random_weights(cfg, rng), rng.normal(0, 1, (2, 5, 3))
    with pytest.raises(AssertionError, match="ORT"):
        compare_with_ort(cfg, w, x, "forward", activations=acts, activation_alpha=alpha, activation_beta=beta)


def test_scaled_tanh_without_parameters_is_zero_in_ort():
    """ACT-23: the ScaledTanh schema gives alpha and beta no default; without activation_alpha/beta ORT
    1.32's LSTM kernel takes 0 and 0 (reading 'zero': g = h = 0, so Y = 0), not this spec's convention
    'unity' (plain tanh)."""
    rng = np.random.default_rng(22)
    acts = ["Sigmoid", "ScaledTanh", "ScaledTanh"]
    for reading, matches in (("zero", True), ("unity", False)):
        f, g, _ = from_onnx_activations(acts, scaled_tanh=reading)
        cfg = config_for("forward", input_dim=3, units=4, bias_mode="double", recurrent_activation=str(f),
                         activation=str(g))
        w, x = random_weights(cfg, rng), rng.normal(0, 1, (2, 5, 3))
        if matches:
            r = compare_with_ort(cfg, w, x, "forward", activations=acts)
            assert np.all(np.asarray(r.output) == 0)
        else:
            with pytest.raises(AssertionError, match="ORT"):
                compare_with_ort(cfg, w, x, "forward", activations=acts)
