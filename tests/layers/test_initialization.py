"""Every randomly initialized weight starts from its own draw, and a seed reproduces them all.

An unseeded Keras 3 initializer draws its seed once, when it is constructed, so one object
handed to several weights gives them all the same values (the v5 blocks were copies of each
other, the position table the first rows of the token table). The tests compare every pair of
non-constant weights of each model family, on their overlapping leading values (so a
(256, d) table that is the top of a (4000, d) table, or a kernel that is another kernel
scaled, counts as a copy), and build each model twice from the same seed.
"""

import itertools
from pathlib import Path

import keras
import numpy as np
import pytest

from kerasvq.config.lm import load_lm_config
from kerasvq.layers.causal_self_attention import CausalSelfAttention
from kerasvq.layers.collaborative_experts import CollaborativeExperts
from kerasvq.layers.initializers import clone_initializer
from kerasvq.layers.llama_decoder import LlamaDecoder
from kerasvq.layers.swiglu import SwiGLU
from kerasvq.layers.top_k_moe import TopKMoE
from kerasvq.layers.transformer_decoder import TransformerDecoder
from kerasvq.models.build import build_language_model
from kerasvq.models.hierarchical_vqvae import HierarchicalVQVAE
from kerasvq.models.vqvae import VQVAE

pytestmark = pytest.mark.backend_neutral

VERSIONS = Path(__file__).resolve().parents[2] / "versions"
# The versions' structure (block, positions, tying, FFN kind) at a width a test builds fast;
# vocabulary > seq_len so the learned position table overlaps the token table's top rows.
SMALL = ["data.vocab_size=300", "data.seq_len=24", "data.stride=24", "model.d_model=32",
         "model.num_layers=3"]
SMALL_TRANSFORMER = SMALL + ["model.num_heads=4", "model.d_ff=64"]
SMALL_EXPERTS = ["model.num_experts=4", "model.expert_d_ff=32"]
SMALL_LSTM = SMALL
LM_VERSIONS = {
    "v5-transformer": SMALL_TRANSFORMER,
    "v5-tuned": SMALL_TRANSFORMER,
    "v4-lstm": SMALL_LSTM,
    "v4-tuned": SMALL_LSTM,
    "v6-50m": SMALL_TRANSFORMER,
    "moc-dense": SMALL_TRANSFORMER,
    "moc-moe": SMALL_TRANSFORMER + SMALL_EXPERTS,
    "moc-moc": SMALL_TRANSFORMER + SMALL_EXPERTS,
    "moc-moc-switch": SMALL_TRANSFORMER + SMALL_EXPERTS,
}


def random_weights(model):
    """(path below the model's own name, float64 array) of every weight that does not start
    constant (biases, norm scales, EMA counters and zero buffers are equal by design), less
    the quantizers' `ema_sum`, which starts as a copy of the codebook on purpose."""
    out = []
    for variable in model.weights:
        values = np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float64)
        if values.size > 1 and np.ptp(values) > 0 and not variable.path.endswith("/ema_sum"):
            out.append((variable.path.split("/", 1)[-1], values))
    return out


def _copies(a, b, n=64):
    """Whether the leading values of `a` and `b` are the same draw (equal up to scale): the
    first `n` flat values, and the common leading block when the ranks match."""
    views = []
    k = min(n, a.size, b.size)
    views.append((a.reshape(-1)[:k], b.reshape(-1)[:k]))
    if a.ndim == b.ndim:
        block = tuple(slice(0, min(x, y, 8)) for x, y in zip(a.shape, b.shape))
        views.append((a[block].reshape(-1), b[block].reshape(-1)))
    for x, y in views:
        if x.size < 4:
            continue
        if np.array_equal(x, y) or abs(np.corrcoef(x, y)[0, 1]) > 0.999:
            return True
    return False


def identical_pairs(model):
    """Paths of every pair of random weights of `model` that start as copies of each other."""
    weights = random_weights(model)
    return [(pa, pb) for (pa, a), (pb, b) in itertools.combinations(weights, 2) if _copies(a, b)]


def build_version(name, seed=1337):
    cfg = load_lm_config(VERSIONS / name / "config.json", LM_VERSIONS[name])
    keras.utils.set_random_seed(seed)
    return build_language_model(cfg)


def vqvae(seed=1337):
    keras.utils.set_random_seed(seed)
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=16, num_heads=4, codebook_size=8,
                  linear_skip=True)
    model.build((None, 24))
    return model


def hierarchical_vqvae(seed=1337):
    keras.utils.set_random_seed(seed)
    levels = [{"name": "coarse", "dim": 4, "codebook_size": 8},
              {"name": "fine", "dim": 4, "codebook_size": 8}]
    model = HierarchicalVQVAE({"a": [0, 1, 2, 3], "b": [4, 5, 6, 7]}, num_features=8,
                              levels=levels, encoder={"hidden_dims": [8], "output_dim": 8})
    model.build((None, 8))
    return model


def layer(kind, seed=1337):
    """One of the layers that take initializer arguments, built on width 32, with the
    initializer the models give it (one object for every kernel)."""
    keras.utils.set_random_seed(seed)
    init = keras.initializers.RandomNormal(stddev=0.02)
    kernels = {"kernel_initializer": init, "output_kernel_initializer": init}
    made = {
        "CausalSelfAttention": lambda: CausalSelfAttention(4, **kernels),
        "TransformerDecoder": lambda: TransformerDecoder(4, 64, **kernels),
        "LlamaDecoder": lambda: LlamaDecoder(4, d_ff=64, **kernels),
        "SwiGLU": lambda: SwiGLU(64, **kernels),
        "SwiGLU-experts": lambda: SwiGLU(32, num_experts=4, **kernels),
        "TopKMoE": lambda: TopKMoE(4, 2, 32, **kernels),
        "CollaborativeExperts": lambda: CollaborativeExperts(4, 2, 32, 4, **kernels),
    }[kind]()
    made.build((None, 6, 32))
    return made


LAYERS = ["CausalSelfAttention", "TransformerDecoder", "LlamaDecoder", "SwiGLU",
          "SwiGLU-experts", "TopKMoE", "CollaborativeExperts"]
FAMILIES = (
    [(name, lambda seed, name=name: build_version(name, seed)) for name in LM_VERSIONS]
    + [("VQVAE", vqvae), ("HierarchicalVQVAE", hierarchical_vqvae)]
    + [(name, lambda seed, name=name: layer(name, seed)) for name in LAYERS]
)


@pytest.mark.parametrize("build", [b for _, b in FAMILIES], ids=[n for n, _ in FAMILIES])
def test_no_two_weights_start_from_the_same_draw(build):
    model = build(1337)
    assert len(random_weights(model)) >= 2
    assert identical_pairs(model) == []


@pytest.mark.parametrize("build", [b for _, b in FAMILIES], ids=[n for n, _ in FAMILIES])
def test_the_same_seed_builds_the_same_weights(build):
    first = {path: values for path, values in random_weights(build(7))}
    second = {path: values for path, values in random_weights(build(7))}
    assert first.keys() == second.keys()
    for path in first:
        np.testing.assert_array_equal(first[path], second[path], err_msg=path)
    other = dict(random_weights(build(8)))
    assert any(not np.array_equal(first[p], other[p]) for p in first)


def _values(initializer, shape=(6, 5)):
    return keras.ops.convert_to_numpy(initializer(shape, dtype="float32"))


def test_clones_of_an_unseeded_initializer_draw_apart_and_follow_the_global_seed():
    keras.utils.set_random_seed(3)
    init = keras.initializers.RandomNormal(stddev=0.02)
    first, second = clone_initializer(init, "a"), clone_initializer(init, "a")
    assert isinstance(first, keras.initializers.RandomNormal) and first.get_config() == init.get_config()
    assert not np.array_equal(_values(first), _values(second))
    keras.utils.set_random_seed(3)
    again = keras.initializers.RandomNormal(stddev=0.02)
    np.testing.assert_array_equal(_values(clone_initializer(again, "a")), _values(first))


def test_clones_of_an_int_seeded_initializer_get_seeds_derived_from_their_names():
    keras.utils.set_random_seed(1)
    init = keras.initializers.GlorotUniform(seed=11)
    clones = {name: _values(clone_initializer(init, name)) for name in ("qkv", "output", "ffn")}
    assert not np.array_equal(clones["qkv"], clones["output"])
    assert not np.array_equal(clones["output"], clones["ffn"])
    assert not np.array_equal(clones["qkv"], _values(init))
    keras.utils.set_random_seed(2)  # the int seed alone fixes them
    other = keras.initializers.GlorotUniform(seed=11)
    for name, expected in clones.items():
        np.testing.assert_array_equal(_values(clone_initializer(other, name)), expected)


def test_clones_of_a_seed_generator_initializer_share_the_generator():
    init = keras.initializers.RandomUniform(seed=keras.random.SeedGenerator(5))
    assert not np.array_equal(_values(clone_initializer(init, "a")), _values(clone_initializer(init, "a")))


def test_clone_initializer_takes_names_and_constant_initializers():
    assert clone_initializer(None, "a") is None
    assert isinstance(clone_initializer("glorot_uniform", "a"), keras.initializers.GlorotUniform)
    constant = keras.initializers.Constant(0.5)
    clone = clone_initializer(constant, "a")
    assert clone is not constant and np.all(_values(clone) == 0.5)


@pytest.mark.parametrize("kind", ["TransformerDecoder", "LlamaDecoder", "TopKMoE", "CollaborativeExperts"])
def test_one_int_seeded_initializer_gives_distinct_weights_that_its_config_reproduces(kind):
    init = keras.initializers.RandomNormal(stddev=0.02, seed=4)
    cls = {"TransformerDecoder": TransformerDecoder, "LlamaDecoder": LlamaDecoder,
           "TopKMoE": TopKMoE, "CollaborativeExperts": CollaborativeExperts}[kind]
    args = {"TransformerDecoder": (4, 64), "LlamaDecoder": (4,), "TopKMoE": (4, 2, 32),
            "CollaborativeExperts": (4, 2, 32, 4)}[kind]
    keras.utils.set_random_seed(1)
    made = cls(*args, kernel_initializer=init, output_kernel_initializer=init)
    made.build((None, 6, 32))
    assert identical_pairs(made) == []
    keras.utils.set_random_seed(2)  # the int seed, not the global one, fixes the weights
    rebuilt = cls.from_config(made.get_config())
    rebuilt.build((None, 6, 32))
    expected = dict(random_weights(made))
    for path, values in random_weights(rebuilt):
        np.testing.assert_array_equal(values, expected[path], err_msg=path)
