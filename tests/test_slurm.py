"""The SLURM profile against a real one-node SLURM cluster (.ci/slurm.sh), on the smoke config.

The session fixture starts the cluster (munged, slurmctld, slurmd on this machine, two fake GPUs)
and stops it at the end if it started it. Without SLURM the tests skip, naming the reason, except
when $CI is "true": then they fail, so CI cannot go green without having run them.

Each run is wrapped in `timeout -k 10 N` (Snakemake treats SIGTERM as "let the jobs finish") and
followed by `snakemake --unlock` and an scancel of the run's leftover jobs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, local_mirror, make_project, smoke_models

pytestmark = [pytest.mark.slurm, pytest.mark.pipeline]

SLURM_SH = REPO / ".ci" / "slurm.sh"
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_TIMEOUT = 1500  # seconds for one snakemake run (the smoke pipeline through SLURM took 403 s on a
                   # 2-core machine; a slower CI machine must not time out)

# The SLURM profile's threads and resources. Its set-threads (2 CPUs per job) fit the 2-CPU test
# node, but run its jobs one at a time: the smoke pipeline then took over 15 minutes on a shared
# 2-core machine. One thread per job lets two run at once; the local reference run uses the same
# (the same threads per job give the same bits).
PROFILE = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
ONE_THREAD = ["--set-threads", *(f"{rule}=1" for rule in PROFILE["set-threads"])]
# Small memory requests: the profile asks for paper-scale memory, which a CI machine may not have.
# (--set-resources replaces the profile's whole set-resources: keep its other entries.)
SMALL = [*ONE_THREAD, "--set-resources", *(
    f"{rule}:{key}={value}"
    for rule in ("prepare", "train", "codes", "prior", "mixture", "evaluate", "sample")
    for key, value in {**PROFILE["set-resources"].get(rule, {}), "mem_mb": 1000}.items())]
# Poll SLURM often: the profile's 20 s before the first status check is meant for real clusters.
FAST_POLL = ["--slurm-init-seconds-before-status-checks", "2",
             "--seconds-between-status-checks", "2"]
ZOO = list(smoke_models())
SEEDS = {"nade": [0, 1]}  # the smoke config's runs (the other models: seed 0 alone)
RUNS = [f"{model}_mnist_{seed}" for model in ZOO for seed in SEEDS.get(model, [0])]
# The plugin names a job's log folder and comment after its wildcard values joined by "_"
# (nade_mnist_1: model nade, dataset mnist, seed 1): rule_<name>/<values>/ and
# rule_<name>_wildcards_<values>; the prepare rule's one value is the dataset.
REMOTE_RULES = {"prepare": ["mnist"], "train": [*RUNS, "classifier_mnist_0"],
                "codes": ["vqvae_mnist_0"], "prior": ["vqvae_mnist_0"],
                "floor": ["classifier_mnist_0"], "evaluate": [*RUNS, "classifier_mnist_0"],
                "sample": RUNS, "mixture": ["ae_mnist_0", "dae_mnist_0"]}

def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but SLURM is unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def _running() -> bool:
    return subprocess.run([str(SLURM_SH), "status"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running one-node cluster; started (and later stopped) here unless it was already up."""
    if shutil.which("sbatch") is None:
        if os.geteuid() == 0 and shutil.which("apt-get"):
            install = subprocess.run([str(SLURM_SH), "install"], capture_output=True, text=True)
            if install.returncode != 0:
                _unavailable(f"sbatch not found and '.ci/slurm.sh install' failed:\n{install.stderr}")
        else:
            _unavailable("sbatch not found and it cannot be installed here (needs root and apt-get): "
                         "run '.ci/slurm.sh install' as root, then rerun")
    if _running():
        yield
        return
    if os.geteuid() != 0:
        _unavailable("the test cluster is not running and starting it needs root: "
                     "run '.ci/slurm.sh start' as root")
    start = subprocess.run([str(SLURM_SH), "start"], capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        _unavailable(f"'.ci/slurm.sh start' failed:\n{start.stderr}")
    try:
        yield
    finally:
        subprocess.run([str(SLURM_SH), "stop"], capture_output=True)


def env_for(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(root / "src")  # the copy's genzoo, in this process and in the jobs
    env["GENZOO_DATA_MIRROR"] = str(local_mirror())
    env.pop("SLURM_JOB_ID", None)  # in case the tests themselves run inside a SLURM job
    return env


def our_jobs(root: Path) -> list[dict[str, str]]:
    """Jobs squeue still knows (.ci/slurm.sh keeps finished ones an hour) whose workdir is `root`."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%k|%Z"], capture_output=True,
                         text=True, check=True).stdout
    jobs = [dict(zip(("id", "state", "comment", "workdir"), line.split("|")))
            for line in out.splitlines() if line.strip()]
    return [job for job in jobs if Path(job["workdir"]) == root]


def snakemake(root: Path, *args: str, timeout: int = RUN_TIMEOUT, background: bool = False):
    """Run snakemake in `root`; in the background its output goes to root/snakemake.out."""
    command = ["timeout", "-k", "10", str(timeout), sys.executable, "-m", "snakemake", *args]
    if background:
        with open(root / "snakemake.out", "w") as out:  # a file, not a pipe that could fill up
            return subprocess.Popen(command, cwd=root, env=env_for(root), stdout=out,
                                    stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=root, env=env_for(root), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)


def output_of(root: Path) -> str:
    return (root / "snakemake.out").read_text()


def slurm_run(root: Path, target: str, *extra: str, background: bool = False):
    """`snakemake --profile slurm <target>` on the smoke config (overriding params-paper.yaml)."""
    return snakemake(root, "--profile", "slurm", target, "--configfile", "params.yaml",
                     *SMALL, *FAST_POLL, "--slurm-keep-successful-logs", *extra,
                     background=background)


def cleanup(root: Path) -> None:
    for job in our_jobs(root):
        if job["state"] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED"):
            subprocess.run(["scancel", job["id"]], capture_output=True)
    snakemake(root, "--unlock", "--cores", "1", timeout=60)


def test_profile_runs_the_pipeline_through_sbatch(slurm_cluster, tmp_path):
    cluster = make_project(tmp_path / "cluster")
    local = make_project(tmp_path / "local")
    try:
        # The local reference run shares the CPUs with the SLURM jobs but fills the polling gaps.
        # It stops at the metrics: the comparison needs no samples or report.
        reference = snakemake(local, "--cores", "2",
                              *(f"reports/metrics/{model}/mnist.json" for model in ZOO),
                              *ONE_THREAD, background=True)  # after the targets: it takes several
        run = slurm_run(cluster, "reports/all.html")
        reference.wait(timeout=RUN_TIMEOUT + 30)
    finally:
        cleanup(cluster)
    assert run.returncode == 0, run.stdout[-5000:]
    assert reference.returncode == 0, output_of(local)[-5000:]
    assert "Config file params.yaml is extended" in run.stdout  # the smoke config, not params-paper

    # Really submitted: one sbatch log per remote job, and squeue remembers them as COMPLETED.
    logs = cluster / ".snakemake" / "slurm_logs"
    for rule, wildcards in REMOTE_RULES.items():
        for wildcard in wildcards:
            found = list((logs / f"rule_{rule}" / wildcard).glob("*.log"))
            assert len(found) == 1, f"no SLURM log of {rule} {wildcard}: {sorted(logs.rglob('*'))}"
    for rule in ("download_mnist", "summarize", "report"):  # localrules
        assert not (logs / f"rule_{rule}").exists(), rule
    jobs = our_jobs(cluster)
    assert sorted(job["comment"] for job in jobs) == sorted(
        f"rule_{rule}" + (f"_wildcards_{w}" if w else "")
        for rule, wildcards in REMOTE_RULES.items() for w in wildcards)
    assert {job["state"] for job in jobs} == {"COMPLETED"}

    for path in ["reports/all.html", "data/samples/made/mnist/seed0/samples.npz",
                 "reports/figures/nade/mnist/seed1/samples.png", "data/models/made/mnist/seed0/model.pt"]:
        assert (cluster / path).is_file(), path
    for model in ZOO:
        on_slurm = json.loads((cluster / f"reports/metrics/{model}/mnist.json").read_text())
        on_laptop = json.loads((local / f"reports/metrics/{model}/mnist.json").read_text())
        assert on_slurm["seeds"] == on_laptop["seeds"] == SEEDS.get(model, [0]), model
        for score in ("test_nll_nats", "label_histogram",  # a GAN has no NLL, only a histogram
                      "superres_l1", "completion_l1"):  # an image-to-image model its errors
            assert on_slurm.get(score) == on_laptop.get(score), (model, score)
        for seed in on_slurm["seeds"]:
            run = f"data/models/{model}/mnist/seed{seed}/model.pt"
            assert (cluster / run).read_bytes() == (local / run).read_bytes(), run
    assert not list(cluster.glob("data/models/*/*/resume.pt"))

@pytest.fixture(scope="module")
def data_done(slurm_cluster, tmp_path_factory):
    """A project copy whose data stages already ran (locally), once for the module."""
    root = make_project(tmp_path_factory.mktemp("data") / "project")
    done = snakemake(root, "--cores", "1", "data/processed/mnist/train.npz", timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    return root


@pytest.fixture
def prepared(data_done, tmp_path):
    """A fresh copy of `data_done` (times kept), so only the job under test runs."""
    root = tmp_path / "project"
    shutil.copytree(data_done, root, symlinks=True)
    yield root
    cleanup(root)


def assert_failed_cleanly(run, root: Path, model: str) -> None:
    """The train job of `model`'s seed-0 run failed, left no output, and the run names its logs."""
    assert run.returncode not in (0, 124, 137), run.stdout[-5000:]  # failed, not timed out
    for name in ("model.pt", "history.json"):
        assert not (root / f"data/models/{model}/mnist/seed0/{name}").exists(), name
    slurm_logs = list((root / f".snakemake/slurm_logs/rule_train/{model}_mnist_0").glob("*.log"))
    assert len(slurm_logs) == 1, slurm_logs
    log = slurm_logs[0].relative_to(root)
    assert str(log) in run.stdout, f"SLURM log {log} not named in:\n{run.stdout[-5000:]}"
    assert f"logs/train/{model}/mnist/seed0.log" in run.stdout, run.stdout[-5000:]


def test_failing_job_fails_the_run(prepared):
    # A corrupted input: the train job starts on the cluster and exits non-zero.
    (prepared / "data/processed/mnist/train.npz").write_bytes(b"not an npz file")
    run = slurm_run(prepared, "data/models/made/mnist/seed0/model.pt", "--retries", "0")
    assert_failed_cleanly(run, prepared, "made")
    assert "Error in rule train" in run.stdout
    [job] = our_jobs(prepared)
    assert job["state"] == "FAILED"


def slow_training(root: Path, epochs: int = 50) -> list[str]:
    """Arguments that make MADE's training take a while (50 epochs: minutes; 6: about 30 s).
    An overlay config file: --config KEY=VALUE turns nested numbers into strings."""
    (root / "slow.yaml").write_text(
        f"models: {{made: {{train: {{epochs: {epochs}, max_steps: 100000, batch_size: 50}}}}}}\n")
    return ["--configfile", "params.yaml", "slow.yaml"]


def when_training(root: Path, run, act) -> None:
    """Call act(job id) once the train job runs and its trainer handles signals; wait for the run."""
    try:
        deadline = time.monotonic() + 180
        while True:
            if run.poll() is not None:
                pytest.fail(f"snakemake ended too early:\n{output_of(root)[-5000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the train job did not start training within 180 s")
            running = [job for job in our_jobs(root) if job["state"] == "RUNNING"]
            log = root / "logs/train/made/mnist/seed0.log"
            # The trainer prints "training made" once the stop signals are handled.
            if running and log.exists() and "training made" in log.read_text():
                time.sleep(3)
                act(running[0]["id"])
                break
            time.sleep(1)
        run.wait(timeout=RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    run.stdout = output_of(root)


def test_cancelled_job_fails_the_run(prepared):
    # The profile's own retries: a job the user cancels must not be resubmitted.
    run = slurm_run(prepared, "data/models/made/mnist/seed0/model.pt", *slow_training(prepared),
                    background=True)
    when_training(prepared, run, lambda job: subprocess.run(["scancel", job], check=True))
    assert_failed_cleanly(run, prepared, "made")
    assert len(our_jobs(prepared)) == 1, our_jobs(prepared)  # never resubmitted
    assert "SLURM status is: 'CANCELLED'" in run.stdout
    # SLURM's SIGTERM reached the trainer, which saved its state for a rerun.
    assert "stopped by signal SIGTERM" in (prepared / "logs/train/made/mnist/seed0.log").read_text()
    assert (prepared / "data/models/made/mnist/seed0/resume.pt").is_file()


def test_time_limit_warning_requeues_the_job_which_resumes(prepared):
    # What the profile's --signal=USR1@120 does 120 s before the time limit, sent now.
    run = slurm_run(prepared, "data/models/made/mnist/seed0/model.pt", *slow_training(prepared, 6),
                    background=True)
    when_training(prepared, run, lambda job: subprocess.run(["scancel", "--signal=USR1", job],
                                                           check=True))
    assert run.returncode == 0, run.stdout[-5000:]
    [job] = our_jobs(prepared)  # one job ID: SLURM ran it again, no resubmission
    assert job["state"] == "COMPLETED"
    restarts = subprocess.run(["scontrol", "show", "job", job["id"]], capture_output=True,
                              text=True).stdout
    assert "Restarts=1" in restarts, restarts
    log = (prepared / "logs/train/made/mnist/seed0.log").read_text()
    assert f"saved when SIGUSR1 stopped SLURM job {job['id']}" in log, log
    assert (prepared / "data/models/made/mnist/seed0/model.pt").is_file()
    assert not (prepared / "data/models/made/mnist/seed0/resume.pt").exists()


def test_a_job_cancelled_while_pending_shows_no_stale_log(prepared):
    old_log = prepared / "logs/train/made/mnist/seed0.log"
    old_log.parent.mkdir(parents=True)
    old_log.write_text("made: best validation NLL 100.0 nats (a run that succeeded earlier)\n")
    # The job cannot start for an hour: cancel it while it pends.
    run = slurm_run(prepared, "data/models/made/mnist/seed0/model.pt", "--set-resources",
                    "train:slurm_extra='--begin=now+3600'", background=True)
    try:
        deadline = time.monotonic() + 120
        while not [job for job in our_jobs(prepared) if job["state"] == "PENDING"]:
            assert run.poll() is None, output_of(prepared)[-5000:]
            assert time.monotonic() < deadline, "the train job was not submitted within 120 s"
            time.sleep(1)
        [job] = our_jobs(prepared)
        subprocess.run(["scancel", job["id"]], check=True)
        run.wait(timeout=RUN_TIMEOUT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    out = output_of(prepared)
    assert run.returncode not in (0, 124, 137), out[-5000:]
    assert "SLURM status is: 'CANCELLED'" in out, out[-5000:]
    assert "succeeded earlier" not in out, out[-5000:]
    # Snakemake leaves an empty log behind for the failed job: this attempt's, not the old one.
    assert not old_log.exists() or old_log.read_text() == ""


def largest_node() -> tuple[str, int, int]:
    """The default partition, and the most CPUs and memory (MB) of one of its nodes."""
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%P|%c|%m"], capture_output=True, text=True,
                         check=True).stdout
    rows = [line.split("|") for line in out.split()]
    default = next(name for name, _, _ in rows if name.endswith("*"))
    cpus, mem = zip(*((int(c), int(m)) for name, c, m in rows if name == default))
    return default.rstrip("*"), max(cpus), max(mem)


@pytest.mark.parametrize("too_big", ["cpus", "mem_mb"])
def test_a_job_too_big_for_every_node_stops_the_run_before_any_submission(prepared, too_big):
    """SLURM would leave a job asking for more CPUs than any node has pending for ever (reason
    PartitionConfig), and refuse one asking for too much memory only when it comes up: the run
    stops at once with one line, and submits nothing."""
    partition, cpus, mem = largest_node()
    if too_big == "cpus":
        extra, line = ["--set-threads", f"train={cpus + 2}"], (
            f"rule train (model=made, dataset=mnist, seed=0) asks for {cpus + 2} CPUs, but the "
            f"largest node in partition {partition} has {cpus}: lower it in the profile's set-threads")
    else:
        extra, line = ["--set-resources", f"train:mem_mb={mem + 1000}"], (
            f"rule train (model=made, dataset=mnist, seed=0) asks for {mem + 1000} MB of memory, but "
            f"the largest node in partition {partition} has {mem}: lower it in the profile's "
            "set-resources (mem_mb)")
    started = time.monotonic()
    run = slurm_run(prepared, "data/models/made/mnist/seed0/model.pt", *extra)
    assert run.returncode not in (0, 124, 137), run.stdout[-5000:]
    assert line in run.stdout.splitlines(), run.stdout[-5000:]
    assert our_jobs(prepared) == []  # nothing submitted
    assert time.monotonic() - started < 120  # not the RUN_TIMEOUT of a job left pending
    # Nothing ran, so nothing is left to undo: the next run starts clean (no lock).
    again = snakemake(prepared, "-n", "--profile", "slurm", "data/models/made/mnist/seed0/model.pt",
                      "--configfile", "params.yaml", timeout=120)
    assert again.returncode == 0, again.stdout[-3000:]
