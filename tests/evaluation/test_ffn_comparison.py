import json
import math

import pytest

from kerasvq.common.errors import UserError
from kerasvq.evaluation.ffn_comparison import bits_per_byte, write_table


def test_bits_per_byte_converts_nats_per_token():
    # 1000 tokens at ln 2 nats each = 1000 bits over 500 bytes = 2 bits/byte.
    assert bits_per_byte(math.log(2), 1000, 500) == pytest.approx(2.0)


def _result(variant, ffn, macs, val_tokens=100, train_tokens=4096):
    return {
        "variant": variant, "ffn": ffn, "aux_loss": None, "backend": "jax",
        "train_tokens": train_tokens, "val_loss": 4.0, "best_val_loss": 3.9,
        "val_bits_per_byte": 1.5, "tokens_per_second": None,
        "parameters": {"total": 10, "active_per_token": 10},
        "forward_macs_per_token": {"total": macs}, "val_tokens": val_tokens, "val_bytes": 400,
        "tokenizer": {"sha256": "abc"},
        "peak_memory": {"bytes": 2**30, "kind": "gpu peak_bytes_in_use"},
    }


def test_table_orders_variants_and_flags_mismatched_data(tmp_path):
    for r in (_result("c", "moc", 6e6), _result("a", "dense", 1e6), _result("b", "moe", 2e6)):
        (tmp_path / f"{r['variant']}.json").write_text(json.dumps(r))
    summary, table = write_table(tmp_path)
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[2].strip() for row in rows] == ["dense", "moe", "moc"]
    assert "(6.00×)" in rows[2] and "n/a" in rows[0]
    assert len(json.loads(summary.read_text())["results"]) == 3
    assert "WARNING" not in table.read_text()
    (tmp_path / "d.json").write_text(json.dumps(_result("d", "moc", 6e6, val_tokens=99)))
    _, table = write_table(tmp_path)
    assert "did not see the same validation text" in table.read_text()


def test_table_without_results_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no variant results"):
        write_table(tmp_path)
