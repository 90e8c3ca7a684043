"""AdamW set up the way GPT-style models are trained.

Weight decay applies to every matrix (kernels and embeddings, ndim ≥ 2) and never to
biases or normalization scales/offsets (ndim < 2), as in nanoGPT.

Example:
    >>> optimizer = adamw_for(model, schedule, weight_decay=0.01, clipnorm=1.0)
"""

import keras


def adamw_for(model, learning_rate, weight_decay=0.01, beta_1=0.9, beta_2=0.95, clipnorm=1.0):
    """AdamW with global-norm clipping, decaying only `model`'s ≥2-D weights."""
    optimizer = keras.optimizers.AdamW(
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        global_clipnorm=clipnorm,
    )
    no_decay = [v for v in model.trainable_variables if len(v.shape) < 2]
    if no_decay:
        optimizer.exclude_from_weight_decay(var_list=no_decay)
    return optimizer
