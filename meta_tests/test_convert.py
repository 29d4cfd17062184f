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
    monkeypatch.setenv("KERAS_BACKEND", "no-such-backend")  # the Keras side cannot run in this process
    code, log = _convert(_keras_npz(tmp_path / "src.npz"), tmp_path / "m.onnx", stated={"bidirectional": True})
    assert code == 0, log
    assert "keras-no-such-backend (source): NOT run" in log and "verified by the reference alone" in log, log
    assert "keras-no-such-backend (source)" not in log.splitlines()[2], "a side that did not run has no column"


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
