"""`clone_initializer`: one initializer object per weight, each with its own draw.

A Keras 3 random initializer fixes its seed when it is constructed: an unseeded one draws an
int from Python's `random` in `__init__` (its config still says `seed: None`), a seeded one
keeps its int. Either way every call returns the same values for the same shape, and for a
longer shape values that start with them (TensorFlow's counter-based generator). One object
handed to several weights therefore makes them copies: this is how every v5 block started
with the same kernels and the position table equalled the token table's first rows.

Example:
    >>> init = keras.initializers.RandomNormal(stddev=0.02)
    >>> qkv = keras.layers.Dense(96, kernel_initializer=clone_initializer(init, "qkv"))
    >>> ffn = keras.layers.Dense(128, kernel_initializer=clone_initializer(init, "ffn"))  # another draw
"""

from __future__ import annotations

import hashlib

import keras


def derived_seed(seed: int, name: str) -> int:
    """A seed in [1, 2**31 - 1] fixed by (`seed`, `name`), the same in every process (no
    Python `hash`, which is salted per process)."""
    digest = hashlib.blake2b(f"kerasvq:{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31 - 2) + 1


def clone_initializer(initializer, name: str):
    """A fresh initializer of the same class and config that draws values of its own.

    The keras-hub pattern (rebuild from `get_config`) with one change for seeded
    initializers, so that each weight gets a distinct seed and a run stays reproducible:
    - unseeded (`seed=None`, every default in kerasvq): the clone is rebuilt from the config
      and so draws a new seed from Python's `random` when it is constructed.
      `keras.utils.set_random_seed` (what `train.seed` calls before building) seeds that
      generator, so the same seed and the same build order give the same weights.
    - int seed: rebuilt with `derived_seed(seed, name)`, `name` being the weight's (or the
      sub-layer's) name inside the layer that clones. Rebuilt as it is, every clone would
      repeat the same values; derived from the name, the layer's weights differ from each
      other even when one seeded object is given for all of them, and the layer's config
      (which holds the int seed) rebuilds exactly the same weights, whatever the global
      seed. As with any Keras layer, two layers given the same int seed start equal.
      Derived int seeds were chosen over `keras.random.SeedGenerator` draws because a
      generator holds a state variable that would have to be tracked and saved with the
      layer, and its draws would depend on how many came before.
    - a `keras.random.SeedGenerator` seed: a shallow copy that shares the generator; every
      call advances its state, so clones already differ.
    - non-random initializers (zeros, ones, constant, identity) are rebuilt as they are.

    Args:
        initializer: an `Initializer`, or anything `keras.initializers.get` takes (a name,
            a serialized dict); None is returned as None.
        name: what the clone initializes, unique among the clones one layer takes
            ("qkv", "ffn_hidden", "block_3"); only int seeds use it.

    Returns:
        A new `keras.initializers.Initializer` (or None).
    """
    if initializer is None:
        return None
    initializer = keras.initializers.get(initializer)
    config = initializer.get_config()
    if isinstance(getattr(initializer, "seed", None), keras.random.SeedGenerator):
        clone = initializer.__class__.__new__(initializer.__class__)
        clone.__dict__.update(initializer.__dict__)
        return clone
    if isinstance(config.get("seed"), int):
        config = {**config, "seed": derived_seed(config["seed"], name)}
    return initializer.__class__.from_config(config)
