"""``lstm-conformance convert``: ports round-trip through the canonical layout and verify; mismatched files,
unverified ports and existing outputs are refused.

The numpy-only parts (Keras .npz and ONNX files, shape checks, the write rules) run wherever onnx is installed;
the torch -> Keras -> ONNX -> torch round trip needs torch, keras (KERAS_BACKEND=torch) and onnxruntime in
one process (e.g. /tmp/venv-ktorch).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from conformance.convert import convert
from conformance.convert import formats
from reference import Config, random_weights
from reference.layouts import to_keras

#: a stacked bidirectional model whose shapes cannot be confused: input 3, units 4, 2 layers
STACK = Config(input_dim=3, units=4, num_layers=2, bidirectional=True)


def _keras_npz(path: Path, config: Config = STACK, seed: int = 0) -> Path:
    np.savez(path, *[np.asarray(a, np.float32) for dirs in to_keras(random_weights(config, seed), config)
                     for d in dirs for a in d.values()])
    return path


def _convert(src: Path, out: Path, **kw) -> tuple[int, str]:
    log = io.StringIO()
    code = convert(src, out, log=log, **kw)
    return code, log.getvalue()


def _canonical(path: Path, config: Config):
    fmt = formats.format_of(path)
    return formats.to_canonical(fmt, formats.read(path, fmt), config)


def test_keras_list_to_onnx_and_back_is_exact_and_verified(tmp_path):
    pytest.importorskip("onnx")
    src = _keras_npz(tmp_path / "src.npz")
    code, log = _convert(src, tmp_path / "m.onnx", stated={"num_layers": 2})
    assert code == 0, log
    assert "layers=2 bidirectional=True" in log and "wrote" in log, log
    code, log = _convert(tmp_path / "m.onnx", tmp_path / "back.npz")
    assert code == 0, log
    want, got = np.load(src), np.load(tmp_path / "back.npz")
    assert list(want) == list(got)
    for k in want:  # Keras -> ONNX (Wb = b, Rb = 0) -> Keras (b + 0): exact
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_framework_that_does_not_import_is_said_to_be_verified_by_the_reference_alone(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    from conformance.convert import verify

    real = verify.load

    def no_keras(name):  # the Keras side cannot run in this process
        if name.startswith("keras"):
            raise ImportError("No module named 'keras'")
        return real(name)

    monkeypatch.setattr(verify, "load", no_keras)
    code, log = _convert(_keras_npz(tmp_path / "src.npz"), tmp_path / "m.onnx", stated={"bidirectional": True})
    assert code == 0, log
    side = verify.adapter_name("keras") + " (source)"
    assert f"{side}: NOT run" in log and "verified by the reference alone" in log, log
    assert side not in log.splitlines()[2], "a side that did not run has no column"


def test_mismatched_units_name_the_tensor_and_both_shapes_and_write_nothing(tmp_path):
    src = _keras_npz(tmp_path / "src.npz")
    with pytest.raises(ValueError, match=r"layer 0 forward kernel \(arr_0\): expected shape \(3, 20\), found \(3, 16\)"):
        _convert(src, tmp_path / "out.npz", stated={"num_layers": 2, "units": 5})
    assert not (tmp_path / "out.npz").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["src.npz"], "no partial file is left behind"


def test_a_unidirectional_claim_on_a_bidirectional_file_names_the_tensor(tmp_path):
    pytest.importorskip("onnx")
    _convert(_keras_npz(tmp_path / "src.npz"), tmp_path / "m.onnx", stated={"num_layers": 2})
    with pytest.raises(ValueError, match=r"LSTM node 0 W: expected shape \(1, 16, 3\), found \(2, 16, 3\)"):
        _convert(tmp_path / "m.onnx", tmp_path / "out.npz", stated={"bidirectional": False})


def test_an_ambiguous_keras_list_asks_for_the_stack(tmp_path):
    # two groups each reading 4 = units features: one bidirectional layer or two stacked forward ones
    one = Config(input_dim=4, units=4, bidirectional=True)
    src = _keras_npz(tmp_path / "src.npz", one)
    with pytest.raises(ValueError, match="--layers"):
        _convert(src, tmp_path / "out.npz")


def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    src, out = _keras_npz(tmp_path / "src.npz"), tmp_path / "out.npz"
    out.write_bytes(b"keep me")
    with pytest.raises(ValueError, match="exists; pass --force"):
        _convert(src, out, stated={"num_layers": 2})
    assert out.read_bytes() == b"keep me"
    code, log = _convert(src, out, stated={"num_layers": 2}, force=True)
    assert code == 0, log
    np.testing.assert_array_equal(np.load(out)["arr_0"], np.load(src)["arr_0"])


def test_a_port_that_does_not_verify_is_not_written_unless_forced(tmp_path, monkeypatch):
    """A converter that swaps the i and f gates of the written tensors: the reference on the converted weights
    sees it, nothing is written; --force writes it and says it did not verify."""
    real = formats.from_canonical

    def swapped(fmt, weights, config, dtype):
        arrays = real(fmt, weights, config, dtype)
        u = config.units
        return [np.concatenate([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], axis=-1) for a in arrays]

    monkeypatch.setattr(formats, "from_canonical", swapped)
    src, out = _keras_npz(tmp_path / "src.npz"), tmp_path / "out.npz"
    code, log = _convert(src, out, stated={"num_layers": 2})
    assert code == 1 and "not written" in log and "reference (converted weights): FAILED" in log, log
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["src.npz"]
    code, log = _convert(src, out, stated={"num_layers": 2}, force=True)
    assert code == 1 and out.exists() and "did NOT verify" in log, log


ADAPTER = {".pt": "torch", ".npz": "keras-torch", ".onnx": "onnxruntime"}


def test_torch_to_keras_to_onnx_to_torch_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    pytest.importorskip("onnxruntime")
    if keras.backend.backend() != "torch":
        pytest.skip("needs KERAS_BACKEND=torch so Keras, torch and ONNX Runtime run in one process")
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    sd = {k: v.detach().clone() for k, v in module.state_dict().items()}
    torch.save(sd, tmp_path / "src.pt")
    chain = [tmp_path / n for n in ("src.pt", "k.npz", "m.onnx", "back.pt")]
    for a, b in zip(chain, chain[1:]):
        code, log = _convert(a, b, stated={"num_layers": 2} if a.suffix == ".npz" else None)
        assert code == 0, log
        header = log.splitlines()[2]
        assert f"{ADAPTER[a.suffix]} (source)" in header and f"{ADAPTER[b.suffix]} (target)" in header, log
        assert "NOT run" not in log, f"every side must run in this process\n{log}"
        ratios = [float(r) for line in log.splitlines()[3:12] for r in line.split()[-3:]]
        assert len(ratios) == 9 * 3 and max(ratios) <= 64.0, log  # output + h, c of 2 layers x 2 directions
    back = torch.load(tmp_path / "back.pt", weights_only=True)
    assert set(back) == set(sd)
    for k in sd:
        if k.startswith("weight"):
            assert torch.equal(back[k], sd[k]), k
    for k in (k for k in sd if k.startswith("bias_ih")):  # Keras has one bias: their sum travels
        hh = k.replace("bias_ih", "bias_hh")
        torch.testing.assert_close(back[k] + back[hh], sd[k] + sd[hh], rtol=0, atol=1e-6)
        assert not back[hh].any()


def test_keras_list_to_keras_model_and_back_is_exact(tmp_path):
    pytest.importorskip("keras")
    src = _keras_npz(tmp_path / "src.npz")
    code, log = _convert(src, tmp_path / "m.keras", stated={"num_layers": 2})
    assert code == 0, log
    code, log = _convert(tmp_path / "m.keras", tmp_path / "back.npz")  # the model's shapes tell the stack
    assert code == 0 and "layers=2 bidirectional=True" in log, log
    want, got = np.load(src), np.load(tmp_path / "back.npz")
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_keras_list_to_weights_h5_and_back_is_exact_and_loads_into_a_users_model(tmp_path):
    keras = pytest.importorskip("keras")
    pytest.importorskip("h5py")
    src = _keras_npz(tmp_path / "src.npz")
    code, log = _convert(src, tmp_path / "m.weights.h5", stated={"num_layers": 2})
    assert code == 0 and "wrote" in log, log
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.weights.h5", "src.npz"]  # no temporary left
    code, log = _convert(tmp_path / "m.weights.h5", tmp_path / "back.npz")  # the groups tell the stack
    assert code == 0 and "layers=2 bidirectional=True" in log, log
    want, got = np.load(src), np.load(tmp_path / "back.npz")
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    # the file is Keras' own save_weights layout: a model of that architecture built by hand loads it
    model = keras.Sequential([keras.Input((None, 3)),
                              keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True)),
                              keras.layers.Bidirectional(keras.layers.LSTM(4))])
    model.load_weights(tmp_path / "m.weights.h5")
    for a, k in zip(model.get_weights(), want):
        np.testing.assert_array_equal(np.asarray(a), want[k], err_msg=k)


def _flax_cells(config: Config, seed: int = 0) -> list[list[dict]]:
    from reference.layouts import to_flax

    w = random_weights(config, seed)
    return [[to_flax(w, config, l, d) for d in range(config.num_directions)] for l in range(config.num_layers)]


def test_flax_tree_to_keras_list_and_back_is_exact(tmp_path):
    serialization = pytest.importorskip("flax.serialization")
    cells = _flax_cells(STACK)
    tree = {"params": {f"layers_{l}": {"forward_rnn": {"cell": c[0]}, "backward_rnn": {"cell": c[1]}}
                       for l, c in enumerate(cells)}}
    (tmp_path / "src.msgpack").write_bytes(serialization.msgpack_serialize(tree))
    code, log = _convert(tmp_path / "src.msgpack", tmp_path / "k.npz")  # the paths tell the stack
    assert code == 0 and "layers=2 bidirectional=True" in log, log
    code, log = _convert(tmp_path / "k.npz", tmp_path / "back.msgpack", stated={"num_layers": 2})
    assert code == 0, log
    back = serialization.msgpack_restore((tmp_path / "back.msgpack").read_bytes())["params"]
    for l, c in enumerate(cells):
        for d, name in enumerate(("forward_rnn", "backward_rnn")):
            for k, v in c[d].items():
                for kk, a in v.items():
                    np.testing.assert_array_equal(back[f"layers_{l}"][name]["cell"][k][kk], a.astype(np.float64),
                                                  err_msg=f"{l} {name} {k}/{kk}")


def test_flax_cells_made_inline_are_a_flat_list_the_shapes_group(tmp_path):
    """Cells named OptimizedLSTMCell_0.._5 (a compact module's inline cells; nnx's 'if_' spelling on one) do not
    say which are one layer's two directions: the input sizes do (3 layers x 2 directions, units 4); a wrong
    --no-bidirectional claim names the first tensor that does not fit."""
    serialization = pytest.importorskip("flax.serialization")
    config = Config(input_dim=3, units=4, num_layers=3, bidirectional=True)
    flat = [c for pair in _flax_cells(config) for c in pair]
    flat[1] = {("if_" if k == "if" else k): v for k, v in flat[1].items()}
    tree = {"params": {f"OptimizedLSTMCell_{i}": c for i, c in enumerate(flat)}}
    (tmp_path / "src.msgpack").write_bytes(serialization.msgpack_serialize(tree))
    code, log = _convert(tmp_path / "src.msgpack", tmp_path / "k.npz")
    assert code == 0 and "layers=3 bidirectional=True" in log, log
    with pytest.raises(ValueError, match=r"tensor layer 1 forward ii/kernel: expected shape \(4, 4\), found \(3, 4\)"):
        _convert(tmp_path / "src.msgpack", tmp_path / "k2.npz", stated={"bidirectional": False})
    assert not (tmp_path / "k2.npz").exists()


def test_a_unidirectional_flax_stack_written_here_reads_back_without_flags(tmp_path):
    """Each layer under its RNN's ``cell`` is one layer: the paths tell a 2-layer stack from a bidirectional
    layer, where the shapes alone (inputs 3, then 4 = units) could be either."""
    pytest.importorskip("flax.serialization")
    config = Config(input_dim=3, units=4, num_layers=2)
    src = _keras_npz(tmp_path / "src.npz", config)
    code, log = _convert(src, tmp_path / "m.msgpack", stated={"num_layers": 2})
    assert code == 0, log
    code, log = _convert(tmp_path / "m.msgpack", tmp_path / "back.npz")  # no flags
    assert code == 0 and "layers=2 bidirectional=False" in log, log
    want, got = np.load(src), np.load(tmp_path / "back.npz")
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
