"""The Keras family: Keras 3 on each backend (``keras3.py``) and tf-keras, the Keras 2 API (``tf_keras.py``),
sharing one layer-chain adapter (``base.py``), the Keras activation names (``names.py``) and the TensorFlow
runner (``tf_runner.py``)."""
