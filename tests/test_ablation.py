"""Lesson 11's precomputed ablation (slmcourse.ablation): the shipped file matches its recorded SHA-256, the table,
plot and explorer read it, and a setting outside the grid is refused with the grid in the message."""
import hashlib
import json
from importlib import resources

import pytest

from slmcourse import CourseError, ablation


def test_shipped_file_matches_its_digest_and_the_data():
    data = (resources.files("slmcourse") / "data" / ablation.FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ablation.SHA256
    results = ablation.load()
    assert results == json.loads(data)
    assert results["runs"] and "fp32" in results["before"]
    grid = results["recipe"]
    assert results["complete"] and len(results["runs"]) == len(grid["ranks"]) * len(grid["targets"]) * len(grid["steps"])
    assert {(r["rank"], r["targets"], r["steps"]) for r in results["runs"]} == {
        (r, t, s) for r in grid["ranks"] for t in grid["targets"] for s in grid["steps"]}    # the whole grid, once each
    assert set(results["before"]) == {"fp32", "bf16", "4-bit"} and {q["base"] for q in results["qlora"]} == {"bf16", "4-bit"}
    for run in results["runs"] + results["qlora"]:
        assert len(run["mc_correct"]) == 24 and run["accuracy"] == pytest.approx(sum(run["mc_correct"]) / 24)


def test_table_plot_find_and_explorer():
    import matplotlib.pyplot as plt

    from slmcourse.explorers.finetune import ablation_explorer

    results = ablation.load()
    rows = ablation.rows(results)
    assert len(ablation.table(results)) == len(rows) + 1                    # + the untrained model
    first = rows[0]
    assert ablation.find(results, first["rank"], first["targets"], first["steps"]) == first
    with pytest.raises(CourseError, match="the grid is"):
        ablation.find(results, 999, "q, v", 10)
    plt.close(ablation.plot(results, highlight=(first["rank"], first["targets"], first["steps"])))
    ablation.qlora_table(results)
    box = ablation_explorer(rank=first["rank"], targets=first["targets"], steps=first["steps"])
    assert "trainable parameters" in box.result.value


def test_a_changed_file_is_refused(monkeypatch):
    monkeypatch.setattr(ablation, "SHA256", "0" * 64)
    with pytest.raises(CourseError, match="SHA-256"):
        ablation.load()
