import json

import numpy as np
import pytest

from kerasvq.cli import main
from kerasvq.training.lr_range_test import suggest


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = np.logspace(-6, 0, 120)
    x = np.log10(lrs)
    # A loss that falls fastest around 1e-3 and explodes after 1e-1.
    losses = 6 - 2 * np.tanh(2 * (x + 3)) + np.where(x > -1, 30 * (x + 1) ** 2, 0)
    steepest, minimum_over_10, _ = suggest(lrs, losses, beta=0.0)
    assert 5e-4 < steepest < 2e-3
    assert minimum_over_10 == pytest.approx(lrs[np.argmin(losses)] / 10)


def test_lr_find_command_writes_plot_and_json(tiny_lm_config, kerasvq_home, capsys):
    output = kerasvq_home / "lr.png"
    config = tiny_lm_config(data={"max_docs": 200})
    assert main(["lr-find", "--config", str(config), "--steps", "40", "--min-lr", "1e-5",
                 "--max-lr", "1", "--output", str(output)]) == 0
    result = json.loads(output.with_suffix(".json").read_text())
    assert output.stat().st_size > 10_000
    assert 1e-5 < result["suggested_lr"] < 1
    assert len(result["losses"]) == result["steps_run"] <= 40
    assert "suggested peak learning rate" in capsys.readouterr().out
