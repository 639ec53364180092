# Shared helpers: config validation, each job's settings file, the model list and the paths of a
# run. Nothing here knows a model by name: what a model needs (its phases, the judge) comes from
# its class in genzoo.models.

import atexit
import os
import shlex
import sys
from functools import partial
from pathlib import Path

# Validate with, and run every job on, the genzoo next to this Snakefile, whatever else is
# installed: the import path below, and every job's PYTHONPATH.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(SRC)}; ")

from genzoo.config import ParamsError, read_params_file, run_datasets, validate_params
from genzoo.data import SPLITS, raw_files
from genzoo.datasets import dataset as dataset_spec
from genzoo.models import JUDGE, model_class
from genzoo.settings import datasets_of, raw_sources, runs, seeds_of, trained, write_settings
from genzoo.settings import undo as undo_settings

PARAMS = "params.yaml"
OUTPUT_DIRS = ("data", "reports", "logs", "settings", ".snakemake")  # what the pipeline writes


def shown(path):
    """A path as the user would type it: relative to the project when inside it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def config_layers():
    """(name, content) of what the config merges, in order: params.yaml, each --configfile (the
    SLURM profile's too), and --config; so an error names the file that holds the bad key.

    Snakemake has read (and merged) every --configfile before this file runs: one that does not
    exist or is not YAML fails in Snakemake itself. What reaches here is checked for what the
    swallowed-target mistake leaves: `--configfile A reports/all.html` takes the target as a second
    config file (the option takes every path after it)."""
    files = [shown(path) for path in workflow.overwrite_configfiles]
    targets = [name for name in files if Path(name).suffix not in (".yaml", ".yml", ".json")
               or Path(name).parts[0] in OUTPUT_DIRS]
    if targets:
        given, wanted = " ".join(name for name in files if name not in targets) or "FILE", " ".join(targets)
        raise WorkflowError(
            f"--configfile {wanted}: not a params file; meant as the target? --configfile takes "
            f"every path after it: put the target first (snakemake --cores all {wanted} "
            f"--configfile {given}) or end the files with -- (snakemake --cores all --configfile "
            f"{given} -- {wanted})")
    replaced = workflow.config_settings.replace_workflow_config  # params.yaml discarded
    layers = [(PARAMS, read_params_file(PARAMS))] if os.path.exists(PARAMS) and not replaced else []
    layers += [(name, read_params_file(name)) for name in files]
    if workflow.config_settings.config:
        layers.append(("--config", dict(workflow.config_settings.config)))
    return layers


# params.yaml is read here, not with Snakemake's loader first: a YAML syntax error then names the
# file, line and column (Snakemake only says "Config file is not valid JSON or YAML").
try:
    _LAYERS = config_layers()
except ParamsError as error:
    raise WorkflowError(str(error)) from None


configfile: PARAMS


try:
    config.update(validate_params(config, source=" + ".join(name for name, _ in _LAYERS) or PARAMS,
                                  layers=_LAYERS))
except ParamsError as error:
    raise WorkflowError(str(error)) from None

# Every job reads its settings from settings/...json, rewritten only when its content (the params
# it uses, the sources it imports) changes: the rules take that file as input, so an edit reruns
# exactly the jobs it affects, and a failed job reruns next time (genzoo/settings.py). Unless jobs
# start (onstart below), the files are put back on exit: `snakemake -n` after an edit shows what
# it would rerun, and reverting the edit then leaves nothing to rerun.
_SETTINGS_CHANGES = write_settings(config, Path("settings"))
_UNDO_SETTINGS = partial(undo_settings, _SETTINGS_CHANGES)
atexit.register(_UNDO_SETTINGS)


def remove_stale_logs():
    """Delete the logs of the jobs this run is about to start. Snakemake deletes a job's log
    only where the job starts (on a SLURM node, when its batch script runs), so a job cancelled
    while it pended would show the log of the last run that succeeded as its failure's cause. Each
    command's log begins with a line stamped with the time, host and SLURM job (genzoo.cli)."""
    for job in workflow.dag.needrun_jobs():
        for log in job.log:
            Path(log).unlink(missing_ok=True)


onstart:
    check_jobs_fit_the_cluster()  # before the line below: a run stopped here leaves no trace
    atexit.unregister(_UNDO_SETTINGS)
    remove_stale_logs()


MODELS = list(config["models"])  # the zoo, as params.yaml lists it
TRAINED = trained(config)  # everything trained: the zoo and the judge of samples
DATASETS = run_datasets(config)  # data.dataset, in its order
ENV = "../envs/genzoo.yaml"  # for --use-conda; relative to the rule files

# One run per (model, dataset, seed): its files under these folders; the summary of a model's
# runs on a dataset is reports/metrics/<model>/<dataset>.json. A dataset's own files live under
# data/raw/<dataset> (its download) and data/processed/<dataset> (its splits).
RUN = "data/models/{model}/{dataset}/seed{seed}"
SETTINGS = "settings/{model}/{dataset}/seed{seed}"
TIMINGS = "reports/timings/{model}/{dataset}/seed{seed}"  # wall-clock times: not cached by DVC
PROCESSED = "data/processed/{dataset}"
SUMMARY = "reports/metrics/{model}/{dataset}.json"


wildcard_constraints:
    model="|".join(TRAINED),
    dataset="|".join(DATASETS),
    seed=r"\d+",


def runs_of(pattern, models):
    """`pattern` (with {model}, {dataset} and {seed}) filled in for every run of `models`."""
    return [pattern.format(model=model, dataset=data, seed=seed)
            for model in models for data, seed in runs(config, model)]


def seed_runs(pattern, wildcards):
    """`pattern` filled in for every seed of the model and dataset of `wildcards`."""
    return [pattern.format(model=wildcards.model, dataset=wildcards.dataset, seed=seed)
            for seed in seeds_of(config, wildcards.model)]


def summaries_of(models):
    """The summary of each model of `models` on each dataset it runs on."""
    return [SUMMARY.format(model=model, dataset=data) for model in models
            for data in datasets_of(config, model)]


def split_files(data):
    """The processed splits of dataset `data`."""
    return [f"{PROCESSED}/{split}.npz".format(dataset=data) for split in SPLITS]


def raw_paths(source):
    """The verified raw files of dataset `source` (what its download rule writes)."""
    return [f"data/raw/{source}/{name}" for name in raw_files(source)]


RAW_SOURCES = raw_sources(config)  # the datasets the run downloads (colored_mnist: MNIST's)


def raw_source(wildcards):
    """The dataset whose raw files the dataset of `wildcards` is built from."""
    return dataset_spec(wildcards.dataset).raw_source


def judge_run(data):
    """The judge's model on dataset `data` (one run: the data seed's)."""
    return f"{RUN}/model.pt".format(model=JUDGE, dataset=data, seed=config["seed"])


def phases_of(model):
    """The extra phases a model declares after training (the VQ-VAE's codes and prior)."""
    return model_class(model).phases


def phase_outputs(phase):
    return [f"{RUN}/{phase.name}/{name}" for name in phase.outputs]


def phase_timings(phase):
    return [f"{TIMINGS}/{phase.name}.json"] if phase.trains else []


def phase_files(wildcards):
    """Input function: every file the run's phases write (the complete model loads them)."""
    return [path.format(**wildcards) for phase in phases_of(wildcards.model)
            for path in phase_outputs(phase)]


def timings_files(wildcards):
    """Input function: the run's timings, the training's first, then its phases' that train."""
    paths = [f"{TIMINGS}/train.json"]
    paths += [path for phase in phases_of(wildcards.model) for path in phase_timings(phase)]
    return [path.format(**wildcards) for path in paths]


def judge_input(wildcards):
    """Models whose score uses the judge (label agreement) get it; the others do not wait."""
    return [judge_run(wildcards.dataset)] if model_class(wildcards.model).needs_judge() else []


def previous_phase_files(name):
    """Input function of phase `name`: the files of the model's phase before it (none for the
    first, which reads the trained model.pt)."""

    def inputs(wildcards):
        phases = [phase.name for phase in phases_of(wildcards.model)]
        index = phases.index(name)
        if index == 0:
            return []
        previous = phases_of(wildcards.model)[index - 1]
        return [path.format(**wildcards) for path in phase_outputs(previous)]

    return inputs


def declared_phases():
    """Each phase name declared by a network the pipeline trains (a model of params.yaml, the
    judge's floor of the sample-quality scores), with the phase and its networks."""
    found = {}
    for model in TRAINED:
        for phase in phases_of(model):
            known, models = found.setdefault(phase.name, (phase, []))
            if (known.outputs, known.trains) != (phase.outputs, phase.trains):
                raise WorkflowError(f"phase {phase.name!r} is declared with other outputs by {models[0]} and {model}")
            models.append(model)
    return found


# -- threads and resources: from the profiles and the machine, never fixed in a rule ----------------
# A rule names no threads, memory, runtime or GPUs. On a cluster the SLURM profile sizes every
# job (set-threads, default-resources, set-resources in workflow/profiles/slurm/config.yaml); its
# set-threads wins over job_threads below. On one machine (`--cores N`) memory and runtime mean
# nothing to Snakemake, and the jobs that compute with torch take job_threads: a thread count is
# an execution setting, like --cores, so it is not in params.yaml, whose values reach the
# settings files and rerun jobs (nor in the workflow profile, whose keys win over --profile
# slurm's). Changing it reruns nothing.

JOBS_SIDE_BY_SIDE = 2  # on one machine: each torch job takes this share of --cores


def train_priority(wildcards):
    """A training job's Snakemake priority: its model's `priority` (the judge's: 0). Higher ones
    start first when the cores are short: longest first keeps a long job from running alone at
    the end (on 2 cores, the seven first models' pipeline ended 5 minutes after NADE started
    last and trained alone)."""
    return config["models"].get(wildcards.model, {}).get("priority", 0)


def job_threads(wildcards):
    """Threads of a job that computes with torch (train, a phase, evaluate, sample) when the
    profile's set-threads does not name its rule: on one machine, --cores / JOBS_SIDE_BY_SIDE
    (at least 1), so on 2 cores two 1-thread jobs run side by side (a model's evaluate and sample
    beside the next training) and on 8 cores two 4-thread jobs; elsewhere (a cluster executor, a
    job inside SLURM) 1, so that what SLURM allocated and what the job uses agree."""
    plugin = workflow.executor_plugin
    if plugin is None or plugin.name not in ("local", "dryrun", "touch"):
        return 1
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores
        return 1
    return max(1, cores // JOBS_SIDE_BY_SIDE)


def check_jobs_fit_the_cluster():
    """On SLURM, before anything is submitted: stop with one line per rule whose jobs ask for more
    CPUs, memory or GPUs than any node of their partition has (SLURM would leave them pending for
    ever, or refuse them when they come up); see genzoo/cluster.py. sinfo missing or unreadable:
    a one-line warning, and no check."""
    from snakemake.logging import logger

    from genzoo.cluster import Job, SinfoError, oversized, read_sinfo

    plugin = workflow.executor_plugin
    if plugin is None or plugin.name != "slurm":
        return
    try:
        nodes = read_sinfo()
    except SinfoError as error:
        logger.warning(f"Not checking that the jobs fit the SLURM nodes: {error}")
        return
    jobs = [Job(job.rule.name, ", ".join(f"{key}={value}" for key, value in (job.wildcards_dict or {}).items()),
                job.threads, job.resources)
            for job in workflow.dag.needrun_jobs() if not job.is_local]
    lines = oversized(jobs, nodes)
    if lines:
        raise WorkflowError("\n".join(lines))

