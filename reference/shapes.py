"""Output and state shapes without running the math (spec/shapes.md, SHAPE-1..SHAPE-6)."""

from __future__ import annotations

from .config import Config

__all__ = ["output_shapes"]


def output_shapes(config: Config, batch: int, timesteps: int) -> dict:
    """Shapes of what :func:`reference.lstm_forward` returns for x[batch, timesteps, input_dim].

    ``output``: SHAPE-2 (return_sequences) (B, T, F) else SHAPE-3 (B, F), F = merged feature size
    (SHAPE-5: 2*hidden for concat, hidden otherwise; merge_mode 'none' gives a pair of shapes);
    ``h``/``c``: SHAPE-4, per layer and direction, h (B, hidden) and c (B, units) (SHAPE-6: with a
    projection hidden = proj_size while c keeps units); ``states``: the return_state list of the last
    layer in Keras order [h_f, c_f, (h_b, c_b)].
    """
    if batch < 1 or timesteps < 1:
        raise ValueError(f"batch={batch}, timesteps={timesteps}: both must be >= 1")
    H, u = config.hidden_size, config.units
    if config.effective_merge_mode == "none":
        one = (batch, timesteps, H) if config.return_sequences else (batch, H)
        output = (one, one)
    else:
        F = config.merged_size
        output = (batch, timesteps, F) if config.return_sequences else (batch, F)
    h = [[(batch, H)] * config.num_directions for _ in range(config.num_layers)]
    c = [[(batch, u)] * config.num_directions for _ in range(config.num_layers)]
    states = [s for _ in range(config.num_directions) for s in ((batch, H), (batch, u))]
    return {"output": output, "h": h, "c": c, "states": states}
