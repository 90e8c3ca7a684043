
import h5py
import numpy as np
import pytest

import keras

from kerasvq.config.base import save_json, to_dict
from kerasvq.config.vqvae import VQVAEConfig, load_vqvae_config
from kerasvq.data.embeddings import EmbeddingFile, load_embeddings, split_indices
from kerasvq.common.errors import UserError
from kerasvq.models.vqvae import VQVAE
from helpers.run_helpers import CrashAtEpoch
from helpers.vq_data import small_vqvae_config, unit_rows


def small_model(**kw):
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=16, num_heads=4, codebook_size=16,
                  data_variance=1 / 24, **kw)
    model.build()
    model.compile(optimizer="adam")
    return model


@pytest.mark.backend_neutral
def test_encode_decode_shapes_and_dtypes():
    x = unit_rows()
    model = small_model(linear_skip=True)
    model.initialize_codebooks(x)
    codes = model.encode(x)
    assert codes.shape == (400, 4) and codes.dtype == np.uint8
    x_hat = model.decode(codes)
    assert x_hat.shape == (400, 24) and x_hat.dtype == np.float32
    np.testing.assert_allclose(x_hat, keras.ops.convert_to_numpy(model(x, training=False)), atol=1e-5)


def test_default_shape_is_monolith_wiki():
    model = VQVAE()
    model.build()
    assert model.quantizer.num_heads == 4 and model.quantizer.head_dim == 128
    assert model.quantizer.codebook_size == 256
    assert [l.units for l in model.encoder.layers if hasattr(l, "units")] == [1024, 512]
    assert [l.units for l in model.decoder.layers if hasattr(l, "units")] == [1024, 384]


def test_bad_inputs_are_one_line_errors():
    model = small_model()
    with pytest.raises(UserError, match="expected embedding width 24, got 30"):
        model.encode(np.zeros((3, 30), "float32"))
    x = unit_rows(10)
    x[3, 0], x[7, 5] = np.nan, np.inf
    with pytest.raises(UserError, match="rows 3, 7"):
        model.encode(x)
    with pytest.raises(UserError, match=r"out of range 0..15 in rows 1"):
        model.decode(np.array([[0, 1, 2, 3], [0, 16, 0, 0]]))
    with pytest.raises(UserError, match=r"shape \(N, 4\)"):
        model.decode(np.zeros((2, 3), int))


def test_save_load_round_trip(tmp_path):
    x = unit_rows(200)
    model = small_model(residual=True)
    model.initialize_codebooks(x)
    model.fit(x, epochs=1, batch_size=50, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(model.encode(x), again.encode(x))
    np.testing.assert_allclose(model.decode(model.encode(x)), again.decode(again.encode(x)), atol=1e-6)


def test_embedding_files_stream_and_validate(tmp_path):
    x = unit_rows(100)
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["vectors/minilm"] = x
    with pytest.raises(UserError, match="no dataset 'embeddings' \\(datasets present: vectors/minilm\\)"):
        EmbeddingFile(tmp_path / "e.h5")
    source = EmbeddingFile(tmp_path / "e.h5", dim=24, dataset="vectors/minilm")
    assert sum(len(b) for b in source.iter_batches(32)) == 100
    np.testing.assert_array_equal(source.take([5, 2, 9]), x[[5, 2, 9]])
    with pytest.raises(UserError, match="expected embedding width 384, got 24"):
        EmbeddingFile(tmp_path / "e.h5", dim=384, dataset="vectors/minilm")
    bad = x.copy()
    bad[42, 3] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(UserError, match="rows 42"):
        load_embeddings(tmp_path / "bad.npy")
    train, test = split_indices(100, 0.2, 0)
    assert len(test) == 20 and not set(train) & set(test)


def test_config_loads_and_rejects_bad_fields(tmp_path):
    cfg = load_vqvae_config("versions/vqvae-wiki/config.json")
    assert cfg.model.num_heads == 4 and cfg.model.codebook_size == 256
    data = to_dict(VQVAEConfig())
    data["model"]["latent_dim"] = 510
    save_json(tmp_path / "c.json", data)
    with pytest.raises(UserError, match="latent_dim"):
        load_vqvae_config(tmp_path / "c.json")


def test_train_and_evaluate_run_on_a_small_file(tmp_path):
    from kerasvq.training.vqvae_run import evaluate_run, train_vqvae

    np.save(tmp_path / "x.npy", unit_rows(600))
    data = to_dict(VQVAEConfig())
    data["data"]["embeddings"] = str(tmp_path / "x.npy")
    data["model"].update(input_dim=24, hidden_dim=32, latent_dim=16, codebook_size=16)
    data["train"].update(epochs=2, batch_size=64, kmeans_sample=400, log_sample=100, reset_every=3)
    save_json(tmp_path / "c.json", data)
    cfg = load_vqvae_config(tmp_path / "c.json")
    _, summary = train_vqvae(cfg, tmp_path / "run", verbose=0)
    assert "val_min_usage" in summary["history"] and summary["train_rows"] == 474
    results = evaluate_run(cfg, tmp_path / "run", num_queries=50)
    assert set(results["methods"]) == {"kerasvq", "faiss_pq", "faiss_opq_pq", "faiss_rq", "faiss_rq_beam8",
                                       "faiss_rq_beam32", "faiss_lsq", "faiss_prq_2x2"}
    assert (tmp_path / "run" / "results" / "rank_frequency.png").is_file()
    assert list((tmp_path / "run" / "logs" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.backend_neutral
@pytest.mark.parametrize("residual", [False, True])
def test_pca_initialisation_starts_as_a_rotation(residual):
    x = unit_rows(300)
    model = VQVAE(input_dim=24, hidden_dim=32, latent_dim=32, num_heads=4, codebook_size=16,
                  data_variance=1 / 24, linear_skip=True, residual=residual)
    model.build()
    model.initialize_linear_paths(x)
    # without quantization the linear paths reconstruct exactly: W has orthonormal columns
    x_back = keras.ops.convert_to_numpy(model._decode(model._encode(x)))
    np.testing.assert_allclose(x_back, x, atol=1e-5)
    assert not model.encoder_skip.trainable
    again = VQVAE.from_config(model.get_config())
    again.build()
    assert not again.encoder_skip.trainable


def test_killed_run_resumes_and_reproduces_the_uninterrupted_one(tmp_path):
    from kerasvq.training.vqvae_run import train_vqvae

    cfg = small_vqvae_config(tmp_path, reset_min_usage=0.9)  # many resets: their noise must resume too
    _, whole = train_vqvae(cfg, tmp_path / "whole", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        train_vqvae(cfg, tmp_path / "killed", verbose=0, extra_callbacks=[CrashAtEpoch(2)])
    assert not (tmp_path / "killed" / "models" / "vqvae.keras").exists()
    _, resumed = train_vqvae(cfg, tmp_path / "killed", verbose=0)
    assert resumed["first_epoch"] == 3
    assert resumed["history"]["loss"] == pytest.approx(whole["history"]["loss"], rel=1e-5)
    assert resumed["codes_reseeded"] == whole["codes_reseeded"] > 0


def test_finished_run_is_kept_without_overwrite(tmp_path, capsys):
    from kerasvq.cli import main
    from kerasvq.training.vqvae_run import train_vqvae

    cfg = small_vqvae_config(tmp_path, epochs=1)
    train_vqvae(cfg, tmp_path / "run", verbose=0)
    model = tmp_path / "run" / "models" / "vqvae.keras"
    before = model.read_bytes()
    args = ["vqvae", "train", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path / "run")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "already finished" in err and "--overwrite" in err and "\n" not in err
    assert model.read_bytes() == before
    assert main(args + ["--overwrite"]) == 0
    assert model.read_bytes() != before
