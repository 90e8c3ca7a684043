import numpy as np
import pytest
import keras

from kerasvq.common.errors import UserError
from kerasvq.generation.generate import generate
from kerasvq.models.lstm_lm import LSTMLM
from kerasvq.models.transformer_lm import TransformerLM
from kerasvq.generation.sampling import SamplingConfig

VOCAB, EOS = 40, 1


def _transformer(positions="learned"):
    keras.utils.set_random_seed(3)
    model = TransformerLM(vocab_size=VOCAB, seq_len=24, d_model=16, num_layers=2, num_heads=2,
                          d_ff=32, dropout=0.0, positions=positions)
    model(np.zeros((1, 4), "int32"))
    return model


def _lstm():
    keras.utils.set_random_seed(3)
    model = LSTMLM(vocab_size=VOCAB, seq_len=24, units=16, num_layers=2, dropout=0.0)
    model(np.zeros((1, 4), "int32"))
    return model


PROMPTS = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]


@pytest.mark.parametrize("make", [
    pytest.param(_transformer, marks=pytest.mark.backend_neutral, id="learned"),
    pytest.param(lambda: _transformer("rotary"), id="rotary"),
    pytest.param(_lstm, id="lstm"),
])
def test_greedy_is_identical_with_and_without_cache(make):
    model = make()
    cfg = SamplingConfig(greedy=True, max_new_tokens=6, stop_at_eos=False)
    cached = generate(model, PROMPTS, cfg, use_cache=True)
    uncached = generate(model, PROMPTS, cfg, use_cache=False)
    assert [r["token_ids"] for r in cached] == [r["token_ids"] for r in uncached]
    assert all(len(r["token_ids"]) == 6 for r in cached)


@pytest.mark.parametrize("make", [
    pytest.param(_transformer, marks=pytest.mark.backend_neutral, id="learned"),
    pytest.param(_lstm, id="lstm"),
])
@pytest.mark.parametrize("penalty, eos", [(1.0, None), (1.3, 7)])
def test_compiled_greedy_loop_matches_the_step_by_step_loop(make, penalty, eos):
    model = make()
    cfg = SamplingConfig(greedy=True, max_new_tokens=8, repetition_penalty=penalty, stop_at_eos=eos is not None)
    fused = generate(model, PROMPTS, cfg, eos_id=eos)
    stepped = generate(model, PROMPTS, cfg, eos_id=eos, reference_loop=True)
    assert fused == stepped


@pytest.mark.backend_neutral
@pytest.mark.parametrize("steps_per_check", [1, 5])
def test_greedy_loop_checks_for_the_end_every_few_steps_without_changing_the_output(steps_per_check):
    # 19 new tokens after a 5-token prompt fill all 24 positions, and 5 does not divide the
    # step count, so the last checks run steps past the end of the buffer.
    model = _transformer()
    for cfg, eos in [(SamplingConfig(greedy=True, max_new_tokens=19, stop_at_eos=False), None),
                     (SamplingConfig(greedy=True, max_new_tokens=7, stop_at_eos=True), 7)]:
        fused = generate(model, PROMPTS, cfg, eos_id=eos, steps_per_check=steps_per_check)
        stepped = generate(model, PROMPTS, cfg, eos_id=eos, reference_loop=True)
        assert fused == stepped


def test_a_batch_gives_each_prompt_its_own_continuation():
    model = _transformer()
    cfg = SamplingConfig(greedy=True, max_new_tokens=6, stop_at_eos=False)
    batched = generate(model, PROMPTS, cfg)
    alone = generate(model, [PROMPTS[1]], cfg)
    assert alone[0]["token_ids"] == batched[1]["token_ids"]


@pytest.mark.backend_neutral
def test_seeded_sampling_repeats_and_penalty_changes_output():
    model = _transformer()
    cfg = SamplingConfig(temperature=1.5, top_k=10, top_p=0.95, max_new_tokens=6, seed=4, stop_at_eos=False)
    a = generate(model, PROMPTS, cfg)
    b = generate(model, PROMPTS, cfg, use_cache=False)
    assert [r["token_ids"] for r in a] == [r["token_ids"] for r in b]
    greedy = SamplingConfig(greedy=True, max_new_tokens=12, stop_at_eos=False)
    plain = generate(model, [[5, 6]], greedy)[0]["token_ids"]
    penalised = generate(model, [[5, 6]], SamplingConfig(greedy=True, max_new_tokens=12, stop_at_eos=False,
                                                         repetition_penalty=50.0))[0]["token_ids"]
    assert len(set(penalised)) >= len(set(plain))
    assert len(set(penalised)) == len(penalised)  # a huge penalty never repeats a token here


def test_stops_at_eos_per_row():
    model = _transformer()
    cfg = SamplingConfig(greedy=True, max_new_tokens=6, stop_at_eos=False)
    free = generate(model, PROMPTS, cfg)
    eos = free[0]["token_ids"][-1]  # pretend a token row 0 emits ends the text
    cut = free[0]["token_ids"].index(eos)
    out = generate(model, PROMPTS, SamplingConfig(greedy=True, max_new_tokens=6), eos_id=eos)
    assert out[0]["stopped_at_eos"] and out[0]["token_ids"] == free[0]["token_ids"][:cut]
    for r, f in zip(out[1:], free[1:]):
        if eos in f["token_ids"]:
            assert r["token_ids"] == f["token_ids"][: f["token_ids"].index(eos)]
        else:
            assert r["token_ids"] == f["token_ids"] and not r["stopped_at_eos"]


def test_long_prompts_keep_their_end_and_bad_input_is_rejected():
    model = _transformer()
    out = generate(model, [list(range(2, 30))], SamplingConfig(greedy=True, max_new_tokens=4), eos_id=EOS)
    assert out[0]["prompt_truncated"] and out[0]["prompt_ids"] == list(range(10, 30))
    with pytest.raises(UserError, match="seq_len"):
        generate(model, [[3]], SamplingConfig(max_new_tokens=24), eos_id=EOS)
    with pytest.raises(UserError, match="zero tokens"):
        generate(model, [[]], SamplingConfig(max_new_tokens=2), eos_id=EOS)


@pytest.mark.backend_neutral
@pytest.mark.parametrize("where", ["numpy", "keras"])
def test_one_column_rule_for_prompt_rows_generating_rows_eos_and_limits(where):
    from keras import ops

    from kerasvq.kernels.column_rule import next_column

    # Rows: inside its prompt; generating; generating the eos; already done; at its limit.
    arrays = dict(prompt_tokens=[21, 0, 0, 0, 0], in_prompt=[True, False, False, False, False],
                  proposal=[3, 4, EOS, 6, 8], done=[False, False, False, True, False],
                  stopped=[False] * 5, limits=[9, 9, 9, 9, 5])
    dtypes = dict(prompt_tokens="int32", proposal="int32", limits="int32")
    convert = (lambda a, d: np.asarray(a, d)) if where == "numpy" else (lambda a, d: ops.convert_to_tensor(a, d))
    args = {k: convert(v, dtypes.get(k, "bool")) for k, v in arrays.items()}
    col = next_column(4, eos_id=EOS, stop_at_eos=True, where=np.where if where == "numpy" else ops.where, **args)
    as_list = lambda x: ops.convert_to_numpy(x).tolist()  # noqa: E731
    assert as_list(col.tokens) == [21, 4, EOS, 0, 8]
    assert as_list(col.generating) == [False, True, True, False, True]
    assert as_list(col.stopped) == [False, False, True, False, False]
    assert as_list(col.done) == [False, False, True, True, True]  # the last row reaches its limit at 5


def test_generate_chooses_one_decoder_and_named_decoders_give_the_reference_tokens():
    from kerasvq.generation.generate import choose_decoder

    model = _transformer()
    greedy = SamplingConfig(greedy=True, max_new_tokens=5, stop_at_eos=False)
    assert choose_decoder(model, greedy, 3, 24, use_cache=False) == "uncached"
    assert choose_decoder(model, greedy, 3, 24, reference_loop=True) == "reference"
    assert choose_decoder(model, SamplingConfig(), 3, 24) == "reference"
    assert choose_decoder(model, greedy, 3, 24, fused=False) == "compiled"
    reference = generate(model, PROMPTS, greedy, decoder="reference")
    assert generate(model, PROMPTS, greedy, decoder="compiled") == reference
    assert generate(model, PROMPTS, greedy, decoder="uncached") == reference
    with pytest.raises(UserError, match="not one of"):
        generate(model, PROMPTS, greedy, decoder="fastest")
    with pytest.raises(UserError, match="greedily"):
        generate(model, PROMPTS, SamplingConfig(max_new_tokens=2, stop_at_eos=False), decoder="compiled")
    with pytest.raises(UserError, match="repetition penalty"):
        generate(model, PROMPTS, SamplingConfig(greedy=True, max_new_tokens=2, repetition_penalty=1.2, stop_at_eos=False),
                 decoder="persistent")
