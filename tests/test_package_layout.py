"""The package's folders form a pipeline: a module imports only from its own folder or from a
folder below it (lazy imports inside functions included), so each folder can be read, tested
and replaced with only the ones beneath it in mind."""

import ast
from pathlib import Path

import kerasvq

# Lowest first. kernels sit below models because the model hands them `DecodeWeights`;
# generation sits below training because a training callback writes sample text.
LAYERS = ["common", "config", "data", "layers", "kernels", "models", "metrics", "generation",
          "training", "evaluation", "commands", "cli", "__main__"]
PACKAGE = Path(kerasvq.__file__).parent


def kerasvq_imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kerasvq."):
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names if a.name.startswith("kerasvq."))


def test_every_module_has_a_home_below_the_package_root():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cli.py"]
    folders = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert folders == sorted(set(LAYERS) - {"cli", "__main__"})


def test_no_import_runs_back_up_the_pipeline():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = path.relative_to(PACKAGE).with_suffix("").parts[0]
        for line, module in kerasvq_imports(path):
            there = module.split(".")[1]
            if LAYERS.index(there) > LAYERS.index(here):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert upward == []
