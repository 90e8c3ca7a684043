"""Evaluation, samples, comparison, report, attention and the sample-text callback, on tiny
models trained in seconds through the real training path on real pt-BR text."""

import json
import math
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kerasvq.evaluation.comparison import compare, comparison_markdown
from kerasvq.config.base import strict_json
from kerasvq.evaluation.lm import RESULTS_SCHEMA_VERSION, evaluate_run, score_documents
from kerasvq.metrics.lm import lm_metrics
from kerasvq.evaluation.registry import resolve_model
from kerasvq.evaluation.trained_model import load_trained_model
from kerasvq.evaluation.samples import SAMPLES_SCHEMA_VERSION, read_prompts, sample_run, settings_with

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["O setor de infraestrutura logística brasileira debate", "A professora explicou", "Segundo o ministério,"]


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory):
    """A tiny Transformer (2 epochs) and a tiny LSTM on its tokenizer: {name: model path}."""
    from kerasvq.config.lm import load_lm_config
    from kerasvq.data.default_corpus import small_ptbr_corpus
    from kerasvq.training.run import train_language_model

    home = tmp_path_factory.mktemp("analysis_home")
    corpus = small_ptbr_corpus(log=lambda m: None)
    configs = {
        "tiny-v5": {"model": {"architecture": "transformer", "d_model": 32, "num_layers": 2, "num_heads": 4,
                              "d_ff": 64, "dropout": 0.0}, "train": {"epochs": 2}},
        "tiny-v4": {"model": {"architecture": "lstm", "d_model": 32, "num_layers": 1, "dropout": 0.0},
                    "train": {"epochs": 1}, "data": {"tokenizer_version": "tiny-v5"}},
    }
    old = os.environ.get("KERASVQ_HOME")
    os.environ["KERASVQ_HOME"] = str(home)
    try:
        paths = {}
        for name, parts in configs.items():
            config = {
                "name": name,
                "data": {"corpus": str(corpus), "max_docs": 250, "vocab_size": 512, "seq_len": 32,
                         "stride": 32, **parts.get("data", {})},
                "model": parts["model"],
                "train": {"batch_size": 16, "learning_rate": 3e-3, "early_stopping_patience": 5, **parts["train"]},
            }
            (home / f"{name}.json").write_text(json.dumps(config))
            train_language_model(load_lm_config(home / f"{name}.json"), "main", log=lambda m: None, verbose=0)
            paths[name] = home / "versions" / name / "models" / "main.keras"
    finally:
        if old is None:
            os.environ.pop("KERASVQ_HOME")
        else:
            os.environ["KERASVQ_HOME"] = old
    return paths


@pytest.fixture(scope="session")
def loaded(trained_runs):
    return {name: load_trained_model(path) for name, path in trained_runs.items()}


@pytest.fixture(scope="session")
def records(trained_runs, loaded):
    settings = settings_with(max_new_tokens=8)
    out = {}
    for name, path in trained_runs.items():
        out[name] = (evaluate_run(path, name, loaded=loaded[name]),
                     sample_run(path, PROMPTS, settings, name, loaded=loaded[name], max_human_chunks=50))
    return out


def test_lm_metrics_formulas():
    m = lm_metrics(total_nats=100 * math.log(2), tokens=50, correct=20, num_bytes=200, num_words=40)
    assert m["bits_per_byte"] == pytest.approx(0.5)
    assert m["bits_per_token"] == pytest.approx(2.0) and m["perplexity"] == pytest.approx(4.0)
    assert m["word_perplexity"] == pytest.approx(2 ** 2.5) and m["token_accuracy"] == 0.4


def test_score_documents_counts_every_token_once(loaded):
    model, _, tok = loaded["tiny-v5"]
    docs = ["Olá, mundo.", "O governo anunciou um novo plano de obras " * 6, "Fim."]
    scored = score_documents(model, tok, docs, batch_size=2)
    assert scored["tokens"] == sum(len(ids) + 1 for ids in tok.encode(docs))
    assert scored["bytes"] == sum(len(d.encode()) + 1 for d in docs)
    assert scored["words"] == sum(len(d.split()) for d in docs)
    # Same nats as one direct forward pass over a short stream.
    ids = [tok.eos_id] + tok.encode(["Olá, mundo."])[0] + [tok.eos_id]
    logits = np.asarray(model(np.asarray([ids[:-1]], "int32")))[0]
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    direct = -sum(logp[i, t] for i, t in enumerate(ids[1:]))
    assert score_documents(model, tok, ["Olá, mundo."])["total_nats"] == pytest.approx(direct, rel=1e-4)
    capped = score_documents(model, tok, docs, max_tokens=3)
    assert capped["documents"] == 1 and capped["bytes"] == len(docs[0].encode()) + 1


def test_results_schema(records, trained_runs):
    results, _ = records["tiny-v5"]
    assert results["schema_version"] == RESULTS_SCHEMA_VERSION and results["kind"] == "kerasvq.lm_results"
    assert {"loss_nats", "perplexity", "token_accuracy", "bits_per_byte", "word_perplexity"} <= set(results["metrics"])
    assert results["data"]["tokens"] > 1000 and results["data"]["split"] == "val"
    assert len(results["config_sha256"]) == 64 and len(results["tokenizer_sha256"]) == 64
    history = json.loads((trained_runs["tiny-v5"].parents[1] / "logs" / "train_main.json").read_text())
    best = min(history["epochs"], key=lambda e: e["val_loss"])
    assert results["training"]["gap"] == pytest.approx(best["gap"]) and len(results["training"]["epochs"]) == 2
    # The evaluation reproduces the training run's own validation cross-entropy closely.
    assert results["metrics"]["loss_nats"] == pytest.approx(best["val_cross_entropy"], rel=0.05)
    # v4 and v5 share a tokenizer and the same held-out documents here.
    v4 = records["tiny-v4"][0]
    assert v4["tokenizer_sha256"] == results["tokenizer_sha256"] and v4["data"]["bytes"] == results["data"]["bytes"]


def test_samples_schema(records):
    _, samples = records["tiny-v5"]
    assert samples["schema_version"] == SAMPLES_SCHEMA_VERSION and samples["kind"] == "kerasvq.evaluation.samples"
    assert set(samples["settings"]) == {"greedy", "sampled"} and len(samples["samples"]) == 2 * len(PROMPTS)
    for s in samples["samples"]:
        assert {"prompt", "setting", "text", "metrics", "verdict"} <= set(s)
        assert s["verdict"]["label"] in {"ok", "gibberish", "repetitive", "gibberish+repetitive"}
        assert s["num_new_tokens"] <= 8
    human = samples["human_baseline"]
    assert human["word_validity"] > 0.8 and human["num_texts"] == 50
    json.dumps(strict_json(samples), allow_nan=False)


def test_prompts_file_has_enough_varied_prompts():
    prompts = read_prompts(ROOT / "analysis" / "prompts_ptbr.txt")
    assert len(prompts) >= 20 and len(set(prompts)) == len(prompts)
    assert "O setor de infraestrutura logística brasileira debate" in prompts


def test_comparison_report_and_attention_build(records, loaded, tmp_path):
    from kerasvq.evaluation.attention_maps import attention_maps
    from kerasvq.evaluation.report import build_report

    comp = compare([records[n][0] for n in ("tiny-v4", "tiny-v5")], [records[n][1] for n in ("tiny-v4", "tiny-v5")],
                   ["v4", "v5"])
    assert comp["same_data"] and [m["label"] for m in comp["models"]] == ["v4", "v5"]
    table = comparison_markdown(comp)
    assert "| v4 | lstm |" in table and "| human (held-out val) |" in table
    model, _, tok = loaded["tiny-v5"]
    pngs = attention_maps(model, tok, PROMPTS[0], tmp_path / "report", "attention_v5")
    assert len(pngs) == 2
    report = build_report(json.loads(json.dumps(strict_json(comp))), tmp_path / "report", pngs)
    text = report.read_text()
    for name in ("lm_metrics.png", "loss_curves.png", "degeneration.png", "attention_v5_layer1.png"):
        assert f"]({name})" in text and (tmp_path / "report" / name).read_bytes()[:4] == b"\x89PNG"
    assert "## 4. Sample excerpts" in text and PROMPTS[0] in text


def test_sample_text_callback_writes_tensorboard_text(loaded, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from kerasvq.generation.sampling import SamplingConfig
    from kerasvq.training.sample_text import SampleTextLogger

    model, _, tok = loaded["tiny-v5"]
    callback = SampleTextLogger(tmp_path / "samples", tok, PROMPTS[:2], SamplingConfig(greedy=True, max_new_tokens=4))
    callback.set_model(model)
    callback.on_train_begin()
    callback.on_epoch_end(0)
    callback.on_train_end()
    events = EventAccumulator(str(tmp_path / "samples"), size_guidance={"tensors": 0}).Reload()
    assert set(events.Tags()["tensors"]) == {"samples/0", "samples/1"}
    text = events.Tensors("samples/0")[0].tensor_proto.string_val[0].decode()
    assert text.startswith(f"**{PROMPTS[0]}**")


def test_registry_and_script_errors(tmp_path, monkeypatch):
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"schema_version": 1, "models": {"v5": {"path": "versions/v5/models/main.keras"}}}))
    monkeypatch.setenv("KERASVQ_HOME", str(tmp_path))
    key, path, entry = resolve_model("v5", registry)
    assert key == "v5" and path == tmp_path / "versions/v5/models/main.keras" and entry["label"] == "v5"
    default = json.loads((ROOT / "analysis" / "model_registry.json").read_text())
    assert "v5_brwac_transformer_fixed" in default["models"]
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / "generate_samples.py"), "--model-key", "nope",
                           "--output", str(tmp_path / "s.json"), "--registry", str(registry)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "unknown model key 'nope'" in proc.stderr and not (tmp_path / "s.json").exists()


def test_comparison_reads_earlier_evaluations_from_folders(records, tmp_path):
    from kerasvq.evaluation.comparison import gather_evaluations, load_evaluations
    from kerasvq.config.base import save_json
    from kerasvq.common.errors import UserError

    for name, folder in (("tiny-v4", "first"), ("tiny-v5", "second")):
        save_json(tmp_path / folder / f"results_{name}.json", strict_json(records[name][0]))
        save_json(tmp_path / folder / f"samples_{name}.json", strict_json(records[name][1]))
    results, samples = load_evaluations(["tiny-v5", "tiny-v4"], [tmp_path / "first", tmp_path / "second"])
    assert [r["model_key"] for r in results] == ["tiny-v5", "tiny-v4"]
    assert compare(results, samples)["same_data"]
    with pytest.raises(UserError, match="no results_v9.json"):
        load_evaluations(["v9"], [tmp_path / "first"])
    # Reused models are read, never loaded: their model files need not exist here.
    missing = tmp_path / "elsewhere" / "main.keras"
    gathered = gather_evaluations([("tiny-v4", missing), ("tiny-v5", missing)], [tmp_path / "second", tmp_path / "first"],
                                  PROMPTS)
    assert [r["model_key"] for r in gathered[0]] == ["tiny-v4", "tiny-v5"]
    # A folder with results but no samples is not reused: the model is evaluated, so here
    # its missing file is the error.
    (tmp_path / "partial").mkdir()
    shutil.copy(tmp_path / "first" / "results_tiny-v4.json", tmp_path / "partial")
    with pytest.raises(UserError, match="main.keras"):
        gather_evaluations([("tiny-v4", missing)], [tmp_path / "partial"], PROMPTS)


SCRIPT_VERBS = {"evaluate_lm.py": "evaluate", "generate_samples.py": "sample", "compare_versions.py": "compare",
                "report.py": "report", "plot_attention.py": "attention", "evaluate_vqvae.py": "vqvae evaluate"}


@pytest.mark.parametrize("script", sorted(SCRIPT_VERBS))
def test_analysis_script_is_its_verb(script):
    """Each analysis script hands its arguments to `kerasvq <verb>`: the usage line is the verb's."""
    proc = subprocess.run([sys.executable, str(ROOT / "analysis" / script), "--help"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"usage: kerasvq {SCRIPT_VERBS[script]} ")


def _tree(folder: Path) -> dict:
    """{relative path: content} with what differs run to run taken out: the `created` stamps of
    the JSON files and the "Generated <time>" line of the report."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = str(path.relative_to(folder))
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            data.pop("created", None)
            out[name] = data
        elif path.suffix == ".md":
            out[name] = [line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.startswith("Generated ")]
        else:
            out[name] = path.read_bytes()
    return out


def test_verbs_write_what_the_scripts_write(trained_runs, tmp_path, monkeypatch, capsys):
    """`kerasvq evaluate|sample|compare|report|attention` on the tiny models, and the analysis
    scripts with the same arguments, write the same files and print the same lines."""
    from kerasvq import cli

    home = trained_runs["tiny-v5"].parents[3]
    monkeypatch.setenv("KERASVQ_HOME", str(home))
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"schema_version": 1, "models": {
        name: {"path": f"versions/{name}/models/main.keras", "label": name.removeprefix("tiny-")}
        for name in trained_runs}}))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# three prompts\n" + "\n".join(PROMPTS) + "\n", encoding="utf-8")
    common = ["--registry", str(registry)]

    def steps(out: Path):
        return [
            ("evaluate_lm.py", ["--model", "tiny-v5", "--output", f"{out}/results_tiny-v5.json", "--max-tokens", "2000"]),
            ("generate_samples.py", ["--model-key", "tiny-v5", "--output", f"{out}/samples_tiny-v5.json",
                                     "--prompts", str(prompts), "--max-new-tokens", "6", "--seed", "7"]),
            # tiny-v5 is read from the two files above, tiny-v4 is evaluated and sampled here.
            ("compare_versions.py", ["--model-keys", "tiny-v4", "tiny-v5", "--output-dir", f"{out}/compare",
                                     "--reuse", str(out), "--prompts", str(prompts), "--max-new-tokens", "6",
                                     "--max-tokens", "2000"]),
            ("report.py", ["--comparison", f"{out}/compare/comparison.json", "--output-dir", f"{out}/report",
                           "--attention-model", "tiny-v5", "--title", "Tiny"]),
            ("plot_attention.py", ["--model", "tiny-v5", "--prompt", PROMPTS[1], "--output-dir", f"{out}/attention"]),
        ]

    monkeypatch.syspath_prepend(str(ROOT / "analysis"))
    printed = {}
    for way in ("script", "verb"):
        out = tmp_path / way
        for script, argv in steps(out):
            if way == "verb":
                assert cli.main([*SCRIPT_VERBS[script].split(), *argv, *common]) == 0
            else:
                monkeypatch.setattr(sys, "argv", [str(ROOT / "analysis" / script), *argv, *common])
                with pytest.raises(SystemExit) as exited:
                    runpy.run_path(str(ROOT / "analysis" / script), run_name="__main__")
                assert exited.value.code == 0
        printed[way] = capsys.readouterr().out.replace(str(out), "<out>")

    script_files, verb_files = _tree(tmp_path / "script"), _tree(tmp_path / "verb")
    assert sorted(verb_files) == sorted(script_files)
    assert {"results_tiny-v5.json", "samples_tiny-v5.json", "compare/comparison.json", "compare/comparison.md",
            "compare/results_tiny-v4.json", "compare/samples_tiny-v4.json", "report/report.md",
            "report/lm_metrics.png", "report/attention_tiny-v5_layer1.png",
            "attention/attention_tiny-v5_layer0.png"} <= set(verb_files)
    for name in script_files:
        assert verb_files[name] == script_files[name], name
    assert printed["verb"] == printed["script"]
    assert "wrote <out>/compare/comparison.md" in printed["verb"]
    assert verb_files["samples_tiny-v5.json"]["settings"]["sampled"]["seed"] == 7
    assert verb_files["compare/comparison.json"]["same_data"]
    assert verb_files["compare/samples_tiny-v5.json"] == verb_files["samples_tiny-v5.json"]
    assert verb_files["compare/samples_tiny-v4.json"]["settings"]["sampled"]["seed"] == 1337
