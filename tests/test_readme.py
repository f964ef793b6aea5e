"""The README's Python block runs as written (in a fresh directory, with the local MLflow store)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block() -> str:
    text = README.read_text()
    section = text[text.index("## Python") :]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_readme_python_block_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    scope: dict = {}
    exec(compile(python_block(), "README.md", "exec"), scope)
    assert scope["risk"].shape == (len(scope["X"]),) and scope["shap_values"].values.shape == scope["X"].shape
    assert (tmp_path / "models" / "py_severe48" / "MLmodel").exists()
    assert (tmp_path / "mlruns" / "mlflow.db").exists() and len(scope["run_id"]) == 32
    scores = scope["scores"]
    assert len(scores) == 100 and scores["patient_id"].is_unique and set(scores["status"]) <= {"ok", "not_eligible"}
    assert "auroc" in capsys.readouterr().out
    assert scope["evaluation"].flow.loc["labelled", "n"] > 100
    assert scope["updated"].method in ("none", "intercept", "logistic")
