"""The reference backward pass against torch.autograd on ``torch.nn.LSTM`` in float64 (GRAD-1, GRAD-2).

An implementation nobody here wrote: the same loss ``sum(output * g_out) + sum(h_n * g_h) + sum(c_n * g_c)``
is differentiated by torch.autograd through ``nn.LSTM`` (weights from ``reference.to_torch``, two biases:
``bias_mode='double'`` maps b, b2 one to one to bias_ih, bias_hh), and every gradient -- input, h0, c0 and
each parameter, mapped back with ``reference.from_torch`` -- must agree to 1e-10 relative. Covers batch_first
and time-major input, bidirectional, two layers, proj_size, initial states, and packed sequences (lengths,
the reference's MASK-1 with the 'zero' output rule). Skipped where torch is not installed (the tests env);
run with ``.tox/torch/bin/python -m pytest tests/test_backward_torch.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed in this environment (tox env 'torch' has it)")

from reference import Config, from_torch, lstm_backward, random_weights, to_torch  # noqa: E402

RTOL = 1e-10
B, T = 3, 5


def torch_gradients(cfg: Config, w, x, g_out, g_h, g_c, init, batch_first: bool, lengths=None):
    """torch.autograd's gradients of the loss, in canonical form: (dx, dh0[l][d], dc0[l][d], Weights)."""
    D, L = cfg.num_directions, cfg.num_layers
    lstm = torch.nn.LSTM(cfg.input_dim, cfg.units, num_layers=L, bidirectional=cfg.bidirectional,
                         proj_size=cfg.proj_size, batch_first=batch_first).double()
    lstm.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(w, cfg).items()})
    xt = torch.tensor(x if batch_first else x.transpose(1, 0, 2), requires_grad=True)
    # STATE-1 / BIDI-3: torch h0 rows are layer-major, row l * D + d
    h0 = torch.tensor(np.stack([init[l][d][0] for l in range(L) for d in range(D)]), requires_grad=True)
    c0 = torch.tensor(np.stack([init[l][d][1] for l in range(L) for d in range(D)]), requires_grad=True)
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first=batch_first,
                                                      enforce_sorted=False)
    out, (hn, cn) = lstm(inp, (h0, c0))
    if lengths is not None:  # MASK-2 'zero': pad_packed_sequence pads with 0
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    if not batch_first:
        out = out.transpose(0, 1)
    gh = torch.tensor(np.stack([g_h[l][d] for l in range(L) for d in range(D)]))
    gc = torch.tensor(np.stack([g_c[l][d] for l in range(L) for d in range(D)]))
    loss = (out * torch.from_numpy(g_out)).sum() + (hn * gh).sum() + (cn * gc).sum()
    loss.backward()
    dx = xt.grad.numpy()
    dx = dx if batch_first else dx.transpose(1, 0, 2)
    per = lambda g: [[g[l * D + d].numpy() for d in range(D)] for l in range(L)]  # noqa: E731
    grads = from_torch({k: p.grad.numpy() for k, p in lstm.named_parameters()}, cfg)
    return dx, per(h0.grad), per(c0.grad), grads


def assert_close_rel(ours, theirs, what: str) -> float:
    scale = max(float(np.max(np.abs(theirs))), 1e-300)
    err = float(np.max(np.abs(ours - theirs))) / scale
    assert err < RTOL, f"{what}: reference vs torch.autograd differ by {err:.2e} relative (> {RTOL:g})"
    return err


def compare(cfg: Config, seed: int, batch_first: bool, lengths=None) -> None:
    rng = np.random.default_rng(seed)
    w = random_weights(cfg, seed)
    x = rng.normal(size=(B, T, cfg.input_dim))
    D, L, H, u = cfg.num_directions, cfg.num_layers, cfg.hidden_size, cfg.units
    init = [[(rng.normal(0, 0.5, (B, H)), rng.normal(0, 0.5, (B, u))) for _ in range(D)] for _ in range(L)]
    g_out = rng.normal(size=(B, T, D * H))
    g_h = [[rng.normal(size=(B, H)) for _ in range(D)] for _ in range(L)]
    g_c = [[rng.normal(size=(B, u)) for _ in range(D)] for _ in range(L)]
    ours = lstm_backward(cfg, w, x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=init, lengths=lengths,
                         masked_output="zero")
    dx, dh0, dc0, gw = torch_gradients(cfg, w, x, g_out, g_h, g_c, init, batch_first, lengths)
    assert_close_rel(ours.x, dx, "d/dx")
    for l in range(L):
        for d in range(D):
            assert_close_rel(ours.h0[l][d], dh0[l][d], f"d/dh0[{l}][{d}]")
            assert_close_rel(ours.c0[l][d], dc0[l][d], f"d/dc0[{l}][{d}]")
            for name, arr in ours.weights.layers[l][d].arrays().items():
                assert_close_rel(arr, getattr(gw.layers[l][d], name), f"d/d{name}[{l}][{d}]")


CONFIGS = {
    "one-layer": dict(),
    "bidirectional": dict(bidirectional=True),
    "two-layers": dict(num_layers=2),
    "projection": dict(units=4, proj_size=2),
    "bidirectional-two-layers-projection": dict(bidirectional=True, num_layers=2, units=4, proj_size=3),
}


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_gradients_match_torch_autograd(name, batch_first):
    """GRAD-1: every gradient equals torch.autograd's through nn.LSTM (float64, initial states given)."""
    cfg = Config(**{"input_dim": 3, "units": 3, "bias_mode": "double", "return_sequences": True, **CONFIGS[name]})
    compare(cfg, 1, batch_first)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_gradients_match_torch_autograd_on_packed_sequences(name, batch_first):
    """GRAD-2, MASK-1, MASK-2 'zero': right-padded lengths == a packed sequence; padded inputs get 0."""
    cfg = Config(**{"input_dim": 3, "units": 3, "bias_mode": "double", "return_sequences": True, **CONFIGS[name]})
    compare(cfg, 2, batch_first, lengths=np.array([5, 2, 4]))


def test_single_bias_gradient_is_torchs_bias_ih_gradient():
    """GATE-1, LAYOUT-3: a single canonical bias maps to bias_ih (bias_hh = 0); both receive the same gradient,
    which is the canonical bias's."""
    cfg = Config(input_dim=3, units=3, return_sequences=True)
    rng = np.random.default_rng(3)
    w, x = random_weights(cfg, 3), rng.normal(size=(B, T, 3))
    init = [[(rng.normal(size=(B, 3)), rng.normal(size=(B, 3)))]]
    g_out, g_h, g_c = rng.normal(size=(B, T, 3)), [[rng.normal(size=(B, 3))]], [[rng.normal(size=(B, 3))]]
    ours = lstm_backward(cfg, w, x, g_out=g_out, g_h=g_h, g_c=g_c, initial_state=init)
    double = cfg.replace(bias_mode="double")
    wd = random_weights(double, 3)
    wd.layers[0][0].b, wd.layers[0][0].b2 = w.layers[0][0].b, np.zeros_like(w.layers[0][0].b)
    wd.layers[0][0].W, wd.layers[0][0].U = w.layers[0][0].W, w.layers[0][0].U
    _, _, _, gw = torch_gradients(double, wd, x, g_out, g_h, g_c, init, batch_first=True)
    assert_close_rel(ours.weights.layers[0][0].b, gw.layers[0][0].b, "d/db vs bias_ih")
    assert_close_rel(ours.weights.layers[0][0].b, gw.layers[0][0].b2, "d/db vs bias_hh")
