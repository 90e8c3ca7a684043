"""`clone_initializer`: one initializer object per weight, each with its own draw.

A Keras 3 random initializer fixes its seed when it is constructed: an unseeded one draws an
int from Python's `random` in `__init__` (its config still says `seed: None`), a seeded one
keeps its int. Either way every call returns the same values for the same shape, and for a
longer shape values that start with them (TensorFlow's counter-based generator). One object
handed to several weights therefore makes them copies: this is how every v5 block started
with the same kernels and the position table equalled the token table's first rows.

Example:
    >>> init = keras.initializers.RandomNormal(stddev=0.02)
    >>> qkv = keras.layers.Dense(96, kernel_initializer=clone_initializer(init))
    >>> ffn = keras.layers.Dense(128, kernel_initializer=clone_initializer(init))  # another draw
"""

from __future__ import annotations

import hashlib
import weakref

import keras

# Clones already taken from each int-seeded initializer object: the k-th clone's seed is
# derived from (seed, k), so weights sharing one seeded object still get distinct draws.
_CLONES_TAKEN: "weakref.WeakKeyDictionary[keras.initializers.Initializer, int]" = (
    weakref.WeakKeyDictionary()
)


def derived_seed(seed: int, index: int) -> int:
    """A seed in [1, 2**31 - 1] fixed by (`seed`, `index`), the same in every process (no
    Python `hash`, which is salted per process)."""
    digest = hashlib.blake2b(f"kerasvq:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**31 - 2) + 1


def clone_initializer(initializer):
    """A fresh initializer of the same class and config that draws values of its own.

    The keras-hub pattern (rebuild from `get_config`) with one change for seeded
    initializers, so that each weight gets a distinct seed and a run stays reproducible:
    - unseeded (`seed=None`, every default in kerasvq): the clone is rebuilt from the config
      and so draws a new seed from Python's `random` when it is constructed.
      `keras.utils.set_random_seed` (what `train.seed` calls before building) seeds that
      generator, so the same seed and the same build order give the same weights.
    - int seed: rebuilt with the seed `derived_seed(seed, k)` for the k-th clone taken from
      this object. The same int seed therefore still fixes every weight, independently of
      the global seed, but no two clones repeat each other. Per-weight int seeds were chosen
      over `keras.random.SeedGenerator` draws because a generator holds a state variable
      that would have to be created, tracked and saved with the layers.
    - a `keras.random.SeedGenerator` seed: a shallow copy that shares the generator; every
      call advances its state, so clones already differ.
    - non-random initializers (zeros, ones, constant, identity) are rebuilt as they are.

    Args:
        initializer: an `Initializer`, or anything `keras.initializers.get` takes (a name,
            a serialized dict); None is returned as None.

    Returns:
        A new `keras.initializers.Initializer` (or None).
    """
    if initializer is None:
        return None
    initializer = keras.initializers.get(initializer)
    config = initializer.get_config()
    seed = getattr(initializer, "seed", None)
    if isinstance(seed, keras.random.SeedGenerator):
        clone = initializer.__class__.__new__(initializer.__class__)
        clone.__dict__.update(initializer.__dict__)
        return clone
    if isinstance(config.get("seed"), int):
        index = _CLONES_TAKEN.get(initializer, 0) + 1
        _CLONES_TAKEN[initializer] = index
        config = {**config, "seed": derived_seed(config["seed"], index)}
    return initializer.__class__.from_config(config)
