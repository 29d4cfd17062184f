"""Running this checkout against other releases of a framework: version specs, cached venvs, ``bisect``.

``specs`` turns ``keras==3.0.0...3.15.1`` / ``keras==3.0.0,3.9.2`` / ``keras>=3.0,<3.11`` into the releases the
package index offers; ``venvs`` builds one cached virtual environment per (backend, pinned releases) with pip
from the configured index; ``probe`` is what runs inside such an environment (one saved case, one JSON line);
``bisect`` ties them together for ``lstm-conformance bisect``.
"""
