"""What a user sees on the terminal when something goes wrong, through Snakemake (issue 10): one
line naming the problem, a non-zero exit, and no output left behind as if it were a result. One
small project copy (the smoke config) whose data is built once; each test runs only the jobs it
needs. The same faults without Snakemake: tests/test_errors.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import edited, local_mirror, make_project

pytestmark = pytest.mark.pipeline

MADE = "arch: {hidden: [16]}\n    train: {epochs: 1, max_steps: 5, batch_size: 50}"  # the smoke config's
MODEL = "data/models/made/mnist/seed0/model.pt"
METRICS = "reports/metrics/made/mnist/seed0.json"


def snakemake(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, GENZOO_DATA_MIRROR=str(local_mirror()), OMP_NUM_THREADS="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=project, env=env,
                            capture_output=True, text=True)
    result.output = result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = make_project(tmp_path_factory.mktemp("failures") / "genzoo")
    result = snakemake(project, "--cores", "2", "data/processed/mnist/test.npz")
    assert result.returncode == 0, result.output
    return project


def settings_snapshot(project: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in sorted((project / "settings").rglob("*.json"))}


def error_lines(output: str, needle: str) -> list[str]:
    return [line for line in output.splitlines() if needle in line]


# -- a failed job: its log, with the one-line cause, on the terminal ------------------------------


def test_a_diverged_training_prints_its_cause_and_leaves_no_model(project):
    """MADE at lr 1e6: a finite loss, a validation NLL of ~1e13. The plain command (the workflow
    profile prints the failed job's log) shows the trainer's one line; the old model.pt of a good
    run is gone and the evaluate job never ran, so nothing of it can reach the report."""
    params = project / "params.yaml"
    # A good run first, its lr written as YAML 1.1 reads a string: accepted as the number.
    with edited(params, MADE, MADE.replace("batch_size: 50}", "batch_size: 50, lr: 1e-3}")):
        result = snakemake(project, "--cores", "2", MODEL)
        assert result.returncode == 0, result.output
    assert json.loads((project / "settings/made/mnist/seed0/train.json").read_text())["train"]["lr"] == 0.001
    assert (project / MODEL).exists()

    with edited(params, MADE, MADE.replace("batch_size: 50}", "batch_size: 50, lr: 1000000}")):
        without = snakemake(project, "--cores", "2", "--workflow-profile", "none", METRICS)
        result = snakemake(project, "--cores", "2", METRICS)
    assert without.returncode == 1 and not error_lines(without.output, "diverged")  # the old way
    assert result.returncode == 1
    assert "Using workflow specific profile profiles/default" in result.output
    [line] = error_lines(result.output, "genzoo train: error:")
    assert line.startswith("genzoo train: error: made: diverged: validation NLL ")
    assert "after epoch 1 (step 5) is more than twice the 543.4 nats of a model that learned " \
           "nothing (uniform); try a lower models.made.train.lr (now 1e+06)" in line
    assert not (project / MODEL).exists() and not (project / METRICS).exists()
    assert not (project / "data/models/made/mnist/seed0/history.json").exists()
    assert "rule evaluate" not in result.output


# -- params.yaml and --configfile mistakes: refused before any job runs ----------------------------


def test_a_yaml_syntax_error_names_file_line_and_column(project):
    from genzoo.config import ParamsError, read_params_file

    before = settings_snapshot(project)
    params = project / "params.yaml"
    broken = "models:\n  made:\n    arch: {hidden: [16]}\n    train: {epochs: 1, max_steps: 5\n"
    with edited(params, params.read_text(), broken):
        result = snakemake(project, "--cores", "2", MODEL)
        with pytest.raises(ParamsError) as expected:  # what `python -m genzoo validate` says
            read_params_file(params)
    assert result.returncode == 1
    [line] = error_lines(result.output, "not valid YAML")
    assert line == str(expected.value).replace(str(params), "params.yaml")
    assert line == ("params.yaml: line 5, column 1: not valid YAML: expected ',' or '}', but got "
                    "'<stream end>' (while parsing a flow mapping that starts at line 4, column 12)")
    assert "Traceback" not in result.output and "Config file is not valid" not in result.output
    assert settings_snapshot(project) == before


def test_an_error_in_an_extra_config_file_names_that_file(project):
    before = settings_snapshot(project)
    (project / "extra.yaml").write_text("models:\n  made:\n    arch: {hiden: 3}\n")
    result = snakemake(project, "--cores", "2", "-n", MODEL, "--configfile", "extra.yaml")
    assert result.returncode == 1
    [line] = error_lines(result.output, "unknown key")
    assert line == "extra.yaml: unknown key models.made.arch.hiden (allowed: hidden, mask_seed, ordering)"
    assert settings_snapshot(project) == before


def test_a_target_swallowed_by_configfile(project):
    """`--configfile FILE target` takes the target as a second config file. Snakemake reads config
    files before the Snakefile: a missing one fails inside Snakemake (a traceback ending in
    FileNotFoundError that names it: nothing the workflow can catch); one that exists and parses
    (an output of an earlier run) is refused by the workflow with the fix. `--` ends the files."""
    (project / "paper.yaml").write_text("models: {made: {train: {lr: 2e-3}}}\n")  # YAML 1.1: a string
    before = settings_snapshot(project)
    missing = snakemake(project, "--cores", "2", "--configfile", "paper.yaml", "reports/all.html")
    assert missing.returncode == 1
    last = [line for line in missing.output.splitlines() if line.strip()][-1]
    assert "'reports/all.html'" in last  # Snakemake 9.27: "FileNotFoundError: [Errno 2] No such ..."
    (project / "reports/metrics/made").mkdir(parents=True, exist_ok=True)
    (project / "reports/metrics/made/mnist.json").write_text('{"model": "made", "test_nll_nats": 90.0}')
    try:
        existing = snakemake(project, "--cores", "2", "--configfile", "paper.yaml",
                             "reports/metrics/made/mnist.json")
    finally:
        (project / "reports/metrics/made/mnist.json").unlink()
    assert existing.returncode == 1
    [line] = error_lines(existing.output, "not a params file")
    assert line == (
        "--configfile reports/metrics/made/mnist.json: not a params file; meant as the target? "
        "--configfile takes every path after it: put the target first (snakemake --cores all "
        "reports/metrics/made/mnist.json --configfile paper.yaml) or end the files with -- (snakemake "
        "--cores all --configfile paper.yaml -- reports/metrics/made/mnist.json)")
    assert settings_snapshot(project) == before
    ended = snakemake(project, "--cores", "2", "-n", "--configfile", "paper.yaml", "--", MODEL)
    assert ended.returncode == 0, ended.output
    assert "rule train:" in ended.output and "model=made" in ended.output  # lr 2e-3 retrains


# -- the workflow profile does not change a --profile slurm run ----------------------------------


def test_the_slurm_profile_is_unaffected_by_the_workflow_profile(project):
    """Snakemake reads the workflow profile under --profile slurm too, its keys winning: the
    arguments must be those of the SLURM profile alone."""
    # Resources print their entries in a per-process order: compare their sorted arguments.
    code = ("import json, sys; from snakemake.cli import parse_args; "
            "text = lambda v: str(sorted(v.args)) if isinstance(getattr(v, 'args', None), list) else str(v); "
            "print(json.dumps({k: text(v) for k, v in vars(parse_args(sys.argv[1:])[1]).items()}))")
    keys = ("executor", "cores", "jobs", "latency_wait", "rerun_incomplete", "printshellcmds",
            "show_failed_logs", "keep_going", "retries", "configfile", "default_resources",
            "set_resources", "set_threads", "targets")

    def parsed(*args):
        result = subprocess.run([sys.executable, "-c", code, *args], cwd=project,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        values = json.loads(result.stdout.splitlines()[-1])
        return {key: values[key] for key in keys}, result.stderr

    with_default, note = parsed("--profile", "slurm", "reports/all.html")
    assert "workflow specific profile profiles/default" in note
    alone, _ = parsed("--profile", "slurm", "--workflow-profile", "none", "reports/all.html")
    assert with_default == alone
    assert alone["executor"] == "slurm" and alone["cores"] == "None" and alone["latency_wait"] == "60"
    local, _ = parsed("--cores", "all", "reports/all.html")
    assert (local["executor"], local["show_failed_logs"], local["rerun_incomplete"]) == ("None", "True", "True")
