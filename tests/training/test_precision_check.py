import math

from kerasvq.config.lm import load_lm_config
from kerasvq.data.lm_data import load_lm_data
from kerasvq.training.precision_check import compare_policies


def test_mixed_bfloat16_training_reaches_the_float32_loss(tiny_lm_config, tmp_path):
    cfg = load_lm_config(tiny_lm_config(model={"dropout": 0.1}, train={"batch_size": 8}))
    data = load_lm_data(cfg, tmp_path / "mappings", log=lambda m: None)
    float32, bfloat16, other_seed = compare_policies(cfg, data.train_stream, data.val_stream,
                                                     steps=60, noise_seed=7)
    assert bfloat16["compute_dtype"] == "bfloat16" and float32["compute_dtype"] == "float32"
    learned = math.log(cfg.data.vocab_size) - float32["val_cross_entropy"]
    assert learned > 1.0, "60 steps should take the model well below the uniform loss"
    # The bf16 run may differ from float32 by about what another seed does, and by far less
    # than what the runs learned.
    assert abs(bfloat16["delta"]) < max(0.05, 2 * abs(other_seed["delta"]))
    assert abs(bfloat16["delta"]) < 0.05 * learned
