import numpy as np
import pytest

from kerasvq.data.corpus import split_documents
from kerasvq.data.windows import WindowDataset, count_windows, token_stream


def test_token_stream_appends_eos_after_each_document():
    stream = token_stream([[5, 6], [7]], eos_id=1)
    assert stream.tolist() == [5, 6, 1, 7, 1] and stream.dtype == np.uint16


@pytest.mark.parametrize("tokens, seq_len, stride, expected", [(10, 4, 2, 3), (5, 4, 4, 1), (4, 4, 1, 0), (100, 8, 8, 12)])
def test_count_windows(tokens, seq_len, stride, expected):
    assert count_windows(tokens, seq_len, stride) == expected


def test_windows_shift_targets_and_respect_stride():
    stream = np.arange(50, dtype=np.uint16)
    batches = WindowDataset(stream, seq_len=8, stride=4, batch_size=3)
    x, y = batches[0]
    assert x.shape == y.shape == (3, 8) and x.dtype == np.int32
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    assert x[:, 0].tolist() == [0, 4, 8]
    assert len(batches) == count_windows(50, 8, 4) // 3


def test_shuffle_changes_order_per_epoch_but_keeps_windows():
    stream = np.arange(200, dtype=np.uint16)
    batches = WindowDataset(stream, seq_len=4, stride=4, batch_size=7, shuffle=True, seed=3)
    first = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])
    batches.on_epoch_end()
    second = np.concatenate([batches[i][0][:, 0] for i in range(len(batches))])
    assert first.tolist() != second.tolist()
    assert set(first.tolist()) <= set(range(0, 200, 4)) and len(set(first.tolist())) == len(first)


def test_evaluation_batches_keep_the_last_partial_batch():
    batches = WindowDataset(np.arange(41, dtype=np.uint16), 4, 4, batch_size=3, drop_remainder=False)
    assert len(batches) == 4 and batches[3][0].shape == (1, 4)


def test_document_split_has_no_leakage(ptbr_corpus):
    docs = ptbr_corpus.read_text(encoding="utf-8").splitlines()
    train, val = split_documents(docs + docs[:50], 0.1, seed=7)
    assert not set(train) & set(val)
    assert split_documents(docs, 0.1, seed=7) == split_documents(list(reversed(docs)), 0.1, seed=7)


def test_max_windows_takes_an_evenly_spaced_bounded_sample():
    stream = np.arange(1000, dtype=np.uint16)
    full = WindowDataset(stream, seq_len=9, stride=10, batch_size=4, drop_remainder=False)
    sample = WindowDataset(stream, seq_len=9, stride=10, batch_size=4, drop_remainder=False, max_windows=10)
    assert full.num_windows == 100 and sample.num_windows == 10 and len(sample) == 3
    assert sample.starts[0] == 0 and sample.starts[-1] == full.starts[-1]
    assert np.all(np.diff(sample.starts) > 0)


def test_window_order_is_a_function_of_seed_and_epoch():
    stream = np.arange(1000, dtype=np.uint16)
    walked = WindowDataset(stream, seq_len=9, stride=10, batch_size=4, shuffle=True, seed=3)
    walked.on_epoch_end()
    walked.on_epoch_end()
    jumped = WindowDataset(stream, seq_len=9, stride=10, batch_size=4, shuffle=True, seed=3)
    jumped.set_epoch(2)
    np.testing.assert_array_equal(walked[0][0], jumped[0][0])
