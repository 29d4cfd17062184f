"""The onnxruntime adapter's ``layout1`` variant (ONNX LSTM-14 ``layout=1``): the installed runtime is asked once
and its refusal becomes the variant's skip reason in its own words; the batch-major feeds and the read-back of Y,
Y_h and Y_c are checked on onnx's ReferenceEvaluator, which runs ``layout=1``, against the layout-0 variant and the
reference (no masks: the ReferenceEvaluator's LSTM does not read sequence_lens)."""

from __future__ import annotations

import numpy as np
import pytest

from reference import Config, lstm_forward, random_weights

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


def test_a_runtime_that_refuses_layout1_is_a_skip_in_its_own_words():
    from conformance.adapters import load

    reason = load("onnxruntime").variant_unavailable_reason("layout1", "cpu")
    if reason is None:
        pytest.skip(f"onnxruntime {onnxruntime.__version__} runs layout=1: the variant runs every check")
    assert reason.startswith(f"onnxruntime {onnxruntime.__version__} refuses layout=1: ")
    assert "layout" in reason.split("refuses layout=1: ", 1)[1], reason  # the runtime's message, not ours


@pytest.mark.parametrize("config", [
    Config(input_dim=3, units=4, bidirectional=True, return_sequences=True, return_state=True, dtype="float32"),
    Config(input_dim=2, units=3, go_backwards=True, return_sequences=True, return_state=True, dtype="float32"),
], ids=["bidirectional", "go_backwards"])
def test_layout1_feeds_and_outputs_are_batch_major(monkeypatch, config):
    from onnx.reference import ReferenceEvaluator

    from conformance.adapters import load

    class Session:  # ONNX Runtime's interface over onnx's reference evaluator
        def __init__(self, model_bytes, *args, **kwargs):
            self.evaluator = ReferenceEvaluator(onnx.load_from_string(model_bytes))

        def run(self, names, feed):
            return self.evaluator.run(names, feed)

    monkeypatch.setattr(onnxruntime, "InferenceSession", Session)
    adapter = load("onnxruntime")
    adapter._layout1 = None  # the evaluator runs layout=1: no refusal to ask for
    w = random_weights(config, 0)
    x = np.random.default_rng(0).standard_normal((3, 5, config.input_dim))
    init = [[(np.full((3, config.units), 0.3), np.full((3, config.units), -0.2))
             for _ in range(config.num_directions)]]
    ref = lstm_forward(config, w, x, initial_state=init)
    outs = {v: adapter.forward(adapter.build(config, w, variant=v), x, initial_state=init)
            for v in ("initializers", "layout1")}
    for name, out in outs.items():
        np.testing.assert_allclose(np.asarray(out.output), ref.output, atol=1e-6, err_msg=name)
        for d in range(config.num_directions):
            np.testing.assert_allclose(out.h[0][d], ref.h[0][d], atol=1e-6, err_msg=f"{name} h{d}")
            np.testing.assert_allclose(out.c[0][d], ref.c[0][d], atol=1e-6, err_msg=f"{name} c{d}")
    np.testing.assert_array_equal(np.asarray(outs["layout1"].output), np.asarray(outs["initializers"].output))
