"""The residual VQ-VAE's geometry options: FAISS RQ codebook start, beam search, conditioned
codewords and the neighbour-ranking loss; all still 4 uint8 codes, encode/decode, saved and
loaded."""

import numpy as np
import pytest

import keras

from kerasvq.common.errors import UserError
from kerasvq.config.vqvae import load_vqvae_config
from kerasvq.layers.faiss_init import residual_codebooks
from kerasvq.models.neighbour_ranking import neighbour_ranking_loss
from kerasvq.models.vqvae import VQVAE

faiss = pytest.importorskip("faiss")


def unit_rows(n=600, dim=24, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def residual_model(**kw):
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=24, num_heads=4, codebook_size=16,
                  data_variance=1 / 24, residual=True, **kw)
    model.build()
    model.compile(optimizer="adam")
    return model


def test_faiss_rq_start_is_faiss_rq_in_latent_space():
    x = unit_rows()
    model = residual_model(beam_size=5)
    model.initialize_linear_paths(x)
    model.initialize_codebooks(x, method="faiss_rq", rq_beam=5)
    z = model.latents(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.quantizer.codebook),
                               residual_codebooks(z, 4, 16, beam=5), rtol=1e-4, atol=1e-4)
    rq = faiss.ResidualQuantizer(24, 4, 4)
    rq.max_beam_size = 5
    rq.train(np.ascontiguousarray(z))
    faiss_error = ((z - rq.decode(rq.compute_codes(z))) ** 2).sum(1).mean()
    codes = model.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (600, 4)
    ours = ((z - keras.ops.convert_to_numpy(model.quantizer.lookup(codes.astype("int32")))) ** 2).sum(1).mean()
    assert ours == pytest.approx(faiss_error, rel=2e-3)
    # linear paths at their PCA start and zero MLPs: decoding inverts the latent rotation
    x_hat = model.decode(codes)
    scale = model._scale ** 2
    assert ((x - x_hat) ** 2).sum(1).mean() == pytest.approx(faiss_error / scale, rel=1e-2)


def test_trained_with_every_option_saves_loads_and_gives_the_same_uint8_codes(tmp_path):
    x = unit_rows()
    model = residual_model(beam_size=4, conditioning_dim=8, conditioning_candidates=8, ranking_weight=0.5)
    model.initialize_linear_paths(x)
    model.initialize_codebooks(x, method="faiss_rq", rq_beam=4)
    history = model.fit(x, x, epochs=2, batch_size=100, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert np.abs(keras.ops.convert_to_numpy(model.quantizer.cond_out)).max() > 0  # corrections trained
    codes = model.encode(x)
    assert codes.dtype == np.uint8
    np.testing.assert_allclose(model.decode(codes), keras.ops.convert_to_numpy(model(x, training=False)),
                               atol=1e-4)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert (again.beam_size, again.conditioning_dim, again.ranking_weight) == (4, 8, 0.5)
    np.testing.assert_array_equal(again.encode(x), codes)
    np.testing.assert_allclose(again.decode(codes), model.decode(codes), atol=1e-5)


def test_ranking_loss_is_zero_for_a_perfect_copy_and_grows_with_disorder():
    x = unit_rows(64)
    rng = np.random.default_rng(1)
    noisy = x + 0.3 * rng.standard_normal(x.shape).astype("float32")
    loss = lambda x_hat: float(keras.ops.convert_to_numpy(neighbour_ranking_loss(x, x_hat, 0.1)))
    assert loss(x) == pytest.approx(0.0, abs=1e-6)
    assert 0 < loss(noisy) < loss(x[rng.permutation(64)])


def test_config_refuses_search_options_without_residual_mode(tmp_path):
    for overrides in (["train.codebook_init=faiss_rq"], ["model.beam_size=4"], ["model.conditioning_dim=8"]):
        with pytest.raises(UserError, match="residual"):
            load_vqvae_config("versions/vqvae-wiki/config.json", ["model.residual=false", *overrides])
    cfg = load_vqvae_config("versions/vqvae-wiki/config.json")
    assert (cfg.model.beam_size, cfg.model.conditioning_dim, cfg.model.ranking_weight,
            cfg.train.codebook_init) == (1, 0, 0.0, "kmeans")


def test_faiss_rq_start_needs_residual_mode():
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=16, num_heads=4, codebook_size=16, data_variance=1 / 24)
    with pytest.raises(UserError, match="faiss_rq"):
        model.initialize_codebooks(unit_rows(), method="faiss_rq")


def test_the_qinco_recipe_loads_with_its_pieces_on():
    cfg = load_vqvae_config("versions/vqvae-wiki-qinco/config.json")
    assert cfg.model.residual and cfg.model.beam_size == 8 and cfg.model.conditioning_dim == 32
    assert cfg.train.codebook_init == "faiss_rq"
