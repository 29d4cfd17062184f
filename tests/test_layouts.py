"""Weight layouts (spec/layouts.md, LAYOUT-1..LAYOUT-5).

Two kinds of checks: round trips canonical -> framework -> canonical are exact (np.array_equal), and the
framework tensors hold each canonical gate in the block the framework's documentation says (a round trip
alone cannot see a gate order that is wrong the same way in both directions).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from reference import (Config, GATES, Weights, from_flax, from_keras, from_onnx, from_torch, random_weights, to_flax,
                       to_keras, to_onnx, to_torch)
from ref_cases import SETTINGS, configs, seeds

IDX = {g: k for k, g in enumerate(GATES)}  # canonical gate row: i 0, f 1, c 2, o 3


def assert_same_weights(a: Weights, b: Weights) -> None:
    assert len(a.layers) == len(b.layers)
    for l, (da, db) in enumerate(zip(a.layers, b.layers)):
        assert len(da) == len(db)
        for d, (x, y) in enumerate(zip(da, db)):
            xa, ya = x.arrays(), y.arrays()
            assert sorted(xa) == sorted(ya), f"l{l} d{d}: tensors {sorted(xa)} != {sorted(ya)}"
            for k in xa:
                assert xa[k].shape == ya[k].shape, f"l{l} d{d} {k}: shape {xa[k].shape} != {ya[k].shape}"
                assert np.array_equal(xa[k], ya[k]), f"l{l} d{d} {k}: round trip changed values"


# ---- Keras: kernel (d, 4u), recurrent_kernel (H, 4u), bias (4u,), order i, f, c, o -----------------------

@SETTINGS
@given(configs(proj_size=0, peepholes=False, bias_mode="single"), seeds)
def test_keras_round_trip_is_exact(cfg, seed):
    """LAYOUT-2: canonical -> Keras -> canonical reproduces every array exactly."""
    w = random_weights(cfg, seed)
    assert_same_weights(from_keras(to_keras(w, cfg), cfg), w)


@SETTINGS
@given(configs(proj_size=0, peepholes=False, bias_mode="single", use_bias=True), seeds)
def test_keras_tensors_hold_gates_in_i_f_c_o_column_blocks(cfg, seed):
    """LAYOUT-2: kernel[:, k*u:(k+1)*u] == W[k].T for k = i, f, c, o; same for recurrent_kernel and bias."""
    w = random_weights(cfg, seed)
    u = cfg.units
    for l, dirs in enumerate(to_keras(w, cfg)):
        for d, t in enumerate(dirs):
            lw = w[l, d]
            assert t["kernel"].shape == (cfg.layer_input_dim(l), 4 * u)
            assert t["recurrent_kernel"].shape == (u, 4 * u)
            assert t["bias"].shape == (4 * u,)
            for k, g in enumerate("ifco"):
                blk = slice(k * u, (k + 1) * u)
                assert np.array_equal(t["kernel"][:, blk], lw.W[IDX[g]].T), g
                assert np.array_equal(t["recurrent_kernel"][:, blk], lw.U[IDX[g]].T), g
                assert np.array_equal(t["bias"][blk], lw.b[IDX[g]]), g


def test_keras_refuses_what_it_cannot_hold():
    """LAYOUT-2: a second bias, a projection or peepholes have no Keras tensor: refused, not dropped."""
    for cfg in (Config(input_dim=2, units=3, bias_mode="double"), Config(input_dim=2, units=3, proj_size=1),
                Config(input_dim=2, units=3, peepholes=True)):
        with pytest.raises(ValueError):
            to_keras(random_weights(cfg, 0), cfg)


# ---- torch: weight_ih_l{k}[_reverse] (4u, in), weight_hh (4u, H), bias_ih, bias_hh, weight_hr (p, u) ------

def _torch_names(cfg: Config) -> set[str]:
    names = set()
    for l in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            names |= {"weight_ih" + sfx, "weight_hh" + sfx}
            if cfg.use_bias:
                names |= {"bias_ih" + sfx, "bias_hh" + sfx}
            if cfg.proj_size:
                names.add("weight_hr" + sfx)
    return names


@SETTINGS
@given(configs(peepholes=False), seeds)
def test_torch_round_trip_is_exact(cfg, seed):
    """LAYOUT-3: canonical -> torch state_dict -> canonical is exact, with projection, two biases,
    bidirectional and stacked layers; a single bias comes back as b + 0 == b."""
    w = random_weights(cfg, seed)
    assert_same_weights(from_torch(to_torch(w, cfg), cfg), w)


@SETTINGS
@given(configs(peepholes=False), seeds)
def test_torch_state_dict_names_shapes_and_gate_rows(cfg, seed):
    """LAYOUT-3: nn.LSTM naming (weight_hh_l1_reverse ...), shapes, and row blocks i, f, g, o."""
    w = random_weights(cfg, seed)
    sd = to_torch(w, cfg)
    assert set(sd) == _torch_names(cfg)
    u, H, p = cfg.units, cfg.hidden_size, cfg.proj_size
    for l in range(cfg.num_layers):
        for d in range(cfg.num_directions):
            sfx = f"_l{l}" + ("_reverse" if d else "")
            lw = w[l, d]
            assert sd["weight_ih" + sfx].shape == (4 * u, cfg.layer_input_dim(l))
            assert sd["weight_hh" + sfx].shape == (4 * u, H)
            if p:
                assert np.array_equal(sd["weight_hr" + sfx], lw.W_hr) and lw.W_hr.shape == (p, u)
            for k, g in enumerate("ifco"):  # torch calls the cell gate g
                blk = slice(k * u, (k + 1) * u)
                assert np.array_equal(sd["weight_ih" + sfx][blk], lw.W[IDX[g]]), g
                assert np.array_equal(sd["weight_hh" + sfx][blk], lw.U[IDX[g]]), g
                if cfg.use_bias:
                    assert np.array_equal(sd["bias_ih" + sfx][blk], lw.b[IDX[g]]), g
                    b2 = lw.b2 if cfg.bias_mode == "double" else np.zeros_like(lw.b)
                    assert np.array_equal(sd["bias_hh" + sfx][blk], b2[IDX[g]]), g


def test_torch_names_for_two_bidirectional_projected_layers():
    """LAYOUT-3: the exact key set torch prints for nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)."""
    cfg = Config(input_dim=3, units=4, num_layers=2, bidirectional=True, proj_size=2, bias_mode="double")
    sd = to_torch(random_weights(cfg, 0), cfg)
    expected = {f"{k}_l{l}{s}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
                for l in (0, 1) for s in ("", "_reverse")}
    assert set(sd) == expected
    assert sd["weight_hh_l1_reverse"].shape == (16, 2)
    assert sd["weight_ih_l1"].shape == (16, 4)  # layer 1 reads 2 directions * proj 2
    assert sd["weight_hr_l0_reverse"].shape == (2, 4)


# ---- ONNX: W (D, 4u, d), R (D, 4u, u), B (D, 8u) = [Wb, Rb], P (D, 3u); order i, o, f, c ----------------

@SETTINGS
@given(configs(proj_size=0, num_layers=1), seeds)
def test_onnx_round_trip_is_exact(cfg, seed):
    """LAYOUT-4: canonical -> ONNX W, R, B, P -> canonical is exact (peepholes, bidirectional, two biases)."""
    w = random_weights(cfg, seed)
    assert_same_weights(from_onnx(to_onnx(w, cfg), cfg), w)


@SETTINGS
@given(configs(proj_size=0, num_layers=2), seeds)
def test_onnx_round_trip_per_layer_of_a_stack(cfg, seed):
    """LAYOUT-4: a stack is one ONNX node per layer; each layer's tensors round-trip exactly."""
    w = random_weights(cfg, seed)
    for l in range(cfg.num_layers):
        assert_same_weights(from_onnx(to_onnx(w, cfg, layer=l), cfg), Weights([w.layers[l]]))


@SETTINGS
@given(configs(proj_size=0, num_layers=1, use_bias=True), seeds)
def test_onnx_tensors_hold_gates_in_i_o_f_c_order(cfg, seed):
    """LAYOUT-4: row block k of W/R and of each half of B is gate 'iofc'[k]; P rows are i, o, f."""
    w = random_weights(cfg, seed)
    t = to_onnx(w, cfg)
    u, D = cfg.units, cfg.num_directions
    assert t["W"].shape == (D, 4 * u, cfg.input_dim) and t["R"].shape == (D, 4 * u, u) and t["B"].shape == (D, 8 * u)
    for d in range(D):
        lw = w[0, d]
        b2 = lw.b2 if cfg.bias_mode == "double" else np.zeros_like(lw.b)
        for k, g in enumerate("iofc"):
            blk = slice(k * u, (k + 1) * u)
            assert np.array_equal(t["W"][d][blk], lw.W[IDX[g]]), g
            assert np.array_equal(t["R"][d][blk], lw.U[IDX[g]]), g
            assert np.array_equal(t["B"][d][blk], lw.b[IDX[g]]), g
            assert np.array_equal(t["B"][d][4 * u:][blk], b2[IDX[g]]), g
        if cfg.peepholes:
            assert t["P"].shape == (D, 3 * u)
            for k in range(3):  # canonical P rows are already (i, o, f), as ONNX's P
                assert np.array_equal(t["P"][d][k * u:(k + 1) * u], lw.P[k])
        else:
            assert "P" not in t


def test_onnx_refuses_projection():
    """LAYOUT-4: the ONNX LSTM op has no projection."""
    cfg = Config(input_dim=2, units=3, proj_size=1)
    with pytest.raises(ValueError, match="proj_size"):
        to_onnx(random_weights(cfg, 0), cfg)


def test_torch_refuses_peepholes():
    """LAYOUT-3: nn.LSTM has no peepholes."""
    cfg = Config(input_dim=2, units=3, peepholes=True)
    with pytest.raises(ValueError, match="peepholes"):
        to_torch(random_weights(cfg, 0), cfg)


# ---- Flax linen LSTMCell: ii/if/ig/io (d, u) no bias, hi/hf/hg/ho (u, u) with bias ----------------------

@SETTINGS
@given(configs(proj_size=0, peepholes=False, bias_mode="single", use_bias=True, num_layers=1, bidirectional=False),
       seeds)
def test_flax_round_trip_is_exact_and_gates_land_in_named_dense_layers(cfg, seed):
    """LAYOUT-5: canonical -> Flax params -> canonical is exact; 'if' holds W_f.T, 'hg' holds U_c.T and b_c."""
    w = random_weights(cfg, seed)
    params = to_flax(w, cfg)
    assert_same_weights(from_flax(params, cfg), w)
    assert set(params) == {"ii", "if", "ig", "io", "hi", "hf", "hg", "ho"}
    lw = w[0, 0]
    for g, fg in zip("ifco", "ifgo"):
        assert set(params["i" + fg]) == {"kernel"}  # input-side Dense layers carry no bias
        assert np.array_equal(params["i" + fg]["kernel"], lw.W[IDX[g]].T)
        assert np.array_equal(params["h" + fg]["kernel"], lw.U[IDX[g]].T)
        assert np.array_equal(params["h" + fg]["bias"], lw.b[IDX[g]])


def test_flax_refuses_second_bias():
    """LAYOUT-5: Flax LSTMCell has one bias."""
    cfg = Config(input_dim=2, units=3, bias_mode="double")
    with pytest.raises(ValueError, match="bias_mode"):
        to_flax(random_weights(cfg, 0), cfg)


# ---- canonical form -------------------------------------------------------------------------------------

@SETTINGS
@given(configs(), seeds)
def test_canonical_shapes_and_flat_round_trip(cfg, seed):
    """LAYOUT-1: W (4,u,d_l), U (4,u,H), b/b2 (4,u), P (3,u), W_hr (p,u); Weights.flat/from_flat is exact."""
    w = random_weights(cfg, seed)
    w.check(cfg)  # raises on any shape mismatch
    u, H = cfg.units, cfg.hidden_size
    for l, dirs in enumerate(w.layers):
        assert len(dirs) == cfg.num_directions
        for lw in dirs:
            assert lw.W.shape == (4, u, cfg.layer_input_dim(l)) and lw.U.shape == (4, u, H)
            assert (lw.b is not None) == cfg.use_bias
            assert (lw.b2 is not None) == (cfg.use_bias and cfg.bias_mode == "double")
            assert (lw.P is not None) == cfg.peepholes
            assert (lw.W_hr is not None) == bool(cfg.proj_size)
    assert_same_weights(Weights.from_flat(w.flat()), w)
