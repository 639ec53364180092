"""genzoo.summary: one model's runs (one per seed) as mean ± std, and the summarize command."""

from __future__ import annotations

import json
import statistics

import pytest

from genzoo.cli import main
from genzoo.config import ParamsError, validate_params
from genzoo.summary import summarize


def run(seed: int, nll: float, **extra) -> dict:
    return {"model": "nade", "seed": seed, "paper": "NADE", "test_nll_nats": nll,
            "num_parameters": 1000, "train_device": "cpu", **extra}


def test_numbers_that_differ_become_mean_and_std_the_rest_stays():
    summary = summarize([run(2, 90.0), run(0, 88.0), run(1, 89.5)])
    assert summary["seeds"] == [0, 1, 2]
    assert summary["test_nll_nats"] == pytest.approx(89.1666666667)
    assert summary["std"] == {"test_nll_nats": pytest.approx(statistics.stdev([88.0, 89.5, 90.0]))}
    assert summary["num_parameters"] == 1000 and summary["train_device"] == "cpu"
    assert [r["seed"] for r in summary["runs"]] == [0, 1, 2] and "seed" not in summary


def test_a_single_run_is_its_own_summary_with_no_spread():
    summary = summarize([run(5, 88.0)])
    assert summary["test_nll_nats"] == 88.0 and summary["std"] == {} and summary["seeds"] == [5]


@pytest.mark.parametrize("runs, message", [
    ([], "no runs"),
    ([run(0, 1.0), {**run(1, 2.0), "model": "made"}], "different models"),
    ([run(0, 1.0), run(0, 2.0)], "seed 0 is scored twice"),
    ([{**run(0, 1.0), "seed": None}], "do not say its seed"),
])
def test_inconsistent_runs_are_refused(runs, message):
    with pytest.raises(ValueError, match=message):
        summarize(runs)


def test_summarize_command_writes_the_summary(tmp_path, capsys):
    paths = []
    for seed, nll in ((0, 88.0), (1, 90.0)):
        paths.append(tmp_path / f"seed{seed}.json")
        paths[-1].write_text(json.dumps(run(seed, nll)))
    out = tmp_path / "nade.json"
    assert main(["summarize", "--runs", *map(str, paths), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["test_nll_nats"] == 89.0
    assert "2 run(s), seeds [0, 1]" in capsys.readouterr().out


def test_summarize_command_fails_in_one_line_without_output(tmp_path, capsys):
    bad = tmp_path / "seed0.json"
    bad.write_text("{not json")
    out = tmp_path / "nade.json"
    assert main(["summarize", "--runs", str(bad), "--out", str(out)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("genzoo summarize: error:") and error.count("\n") == 1
    assert not out.exists()


def test_seeds_default_to_the_seed_and_a_model_inherits_the_top_level_seeds():
    params = validate_params({"seed": 7, "models": {"nade": {}}})
    assert params["seeds"] == [7] and params["models"]["nade"]["seeds"] == [7]
    params = validate_params({"seeds": [0, 1, 2], "models": {"nade": {}, "made": {"seeds": [4]}}})
    assert params["models"]["nade"]["seeds"] == [0, 1, 2] and params["models"]["made"]["seeds"] == [4]


@pytest.mark.parametrize("bad, key", [({"seeds": []}, "seeds"), ({"seeds": [-1]}, "seeds.0"),
                                      ({"models": {"made": {"seeds": [1, 1]}}}, "models.made.seeds"),
                                      ({"classifier": {"seeds": [1]}}, "classifier.seeds")])
def test_bad_seeds_are_refused_naming_the_key(bad, key):
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        validate_params(bad)
