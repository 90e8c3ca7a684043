"""Learning-rate schedule: linear warmup, then cosine decay to a floor.

Example:
    >>> schedule = warmup_cosine(peak=1e-4, total_steps=2000, warmup_steps=100, min_ratio=0.1)
    >>> float(schedule(100))        # the peak, reached at the end of warmup
    0.0001
"""

import keras


def warmup_cosine(peak, total_steps, warmup_steps, min_ratio=0.1):
    """Keras's `CosineDecay` with warmup: 0 → peak over `warmup_steps`, then cosine to
    `peak × min_ratio` at `total_steps`."""
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be in [0, total_steps={total_steps})")
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(peak, total_steps, alpha=min_ratio)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=total_steps - warmup_steps,
        alpha=min_ratio,
        warmup_target=peak,
        warmup_steps=warmup_steps,
    )
