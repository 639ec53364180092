"""Each job's resolved settings, as one small JSON file per job that changes only with them.

Snakemake writes these files whenever it reads the workflow (and ``python -m genzoo settings``
does, as DVC's first stage); every rule takes its job's file as an input and every command reads
its settings from it. A file is rewritten only when its content changes, so Snakemake (by
modification time) and DVC (by hash) see the same, precise dependencies:

* a job's file holds exactly the params it uses (a model's ``arch`` and ``train`` for its
  training, only the ``evaluate`` knobs its ``score`` reads, its ``sample`` section, ...), so an
  edit reruns the jobs that read the edited value and nothing else;
* and the digests of the package files its command imports (``sources``), so editing a model's
  file reruns that model's jobs, and editing ``train.py`` retrains everything;
* after a failed, diverged or interrupted job the file is still newer than the old outputs, so
  rerunning the same command redoes the job instead of reporting the old results.

A run that executes no job (``snakemake -n`` to see what an edit would rerun, ``--lint``, a
target with nothing to do) puts the files back as they were when it exits, mtimes included, so
looking never changes what a later run does (``workflow/rules/common.smk``).

Layout (``settings/``)::

    mirrors.json                                         each download's mirrors (an input of no job)
    data/<dataset>.json                                  prepare: the data seed and the split
    <model>/<dataset>/seed<s>/train.json                 a run's training (the classifier's too)
    <model>/<dataset>/seed<s>/<phase>.json               a model's extra phases (VQ-VAE: codes, prior)
    <model>/<dataset>/seed<s>/evaluate.json, sample.json its scoring and its figures
    <model>/<dataset>/summarize.json, report.json        the summaries and the report

A run is one (model, dataset, seed): every dataset of ``data.dataset`` that the model runs on
(``models.<name>.datasets``), every seed of the model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import dataset_problem, run_datasets
from .data import atomic_write_bytes, levels_of
from .datasets import dataset, variant_of
from .models import JUDGE, model_class
from .sources import PACKAGE_DIR, module_sources

SETTINGS_DIR = Path("settings")
TEMPLATE = PACKAGE_DIR / "templates" / "report.html.j2"


@functools.lru_cache(maxsize=None)
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def digests(*modules: str, files: tuple[Path, ...] = ()) -> dict[str, str]:
    """SHA-256 (first 16 hex digits) of each package file the modules import, by its path in the
    package (``genzoo/models/vae.py``)."""
    paths = [*module_sources(*modules), *files]
    return {str(path.relative_to(PACKAGE_DIR.parent)): _digest(path, path.stat().st_mtime_ns)
            for path in sorted(paths)}


def seeds_of(params: dict[str, Any], name: str) -> list[int]:
    """A model's training seeds; the judge (the classifier of samples) has one run, the data's."""
    return [params["seed"]] if name == JUDGE else list(params["models"][name]["seeds"])


def datasets_of(params: dict[str, Any], name: str) -> list[str]:
    """The datasets a network runs on: the judge on every dataset of the run (it scores every
    model's samples there), a model on its ``datasets`` (validate_params fills them in)."""
    return run_datasets(params) if name == JUDGE else list(params["models"][name]["datasets"])


def runs(params: dict[str, Any], name: str) -> list[tuple[str, int]]:
    """(dataset, seed) of every run of network ``name``, dataset by dataset."""
    return [(data, seed) for data in datasets_of(params, name) for seed in seeds_of(params, name)]


def section_of(params: dict[str, Any], name: str) -> dict[str, Any]:
    return params[JUDGE] if name == JUDGE else params["models"][name]


def trained(params: dict[str, Any]) -> list[str]:
    """Every network the pipeline trains: the zoo as params.yaml lists it, and the judge."""
    return [*params["models"], JUDGE]


def used_modules(name: str, section: dict[str, Any]) -> list[str]:
    """The model's own module and those of the networks it builds from its params at run time
    (the VQ-VAE's prior)."""
    return [f"models.{name}", *(f"models.{other}" for other in model_class(name).networks_used(section))]


def run_settings(params: dict[str, Any], name: str, seed: int,
                 data: str = "mnist") -> dict[str, dict[str, Any]]:
    """The settings of each job of the run of ``name`` on dataset ``data`` with ``seed``, by job:
    train, the model's phases, evaluate, sample."""
    cls = model_class(name)
    section = section_of(params, name)
    evaluate = params["evaluate"]
    common = {"model": name, "dataset": data, "seed": seed,
              "variant": variant_of(data, params["data"]["variant"])}
    used = used_modules(name, section)
    own = used[0]
    jobs = {"train": {**common, "arch": section["arch"], "train": section["train"],
                      "eval_batch_size": evaluate["batch_size"],
                      "sources": digests("train", own)}}
    for phase in cls.phases:  # a phase with its own section builds the networks it names
        jobs[phase.name] = {**common, "phase": phase.name,
                            **({phase.section: section[phase.section]} if phase.section else {}),
                            **{key: evaluate[key] for key in phase.evaluate_keys},
                            "sources": digests("train", *(used if phase.section else [own]))}
    jobs["evaluate"] = {**common, **{key: evaluate[key] for key in cls.evaluate_keys()},
                        "sources": digests("evaluate", *used)}
    if name != JUDGE:
        jobs["sample"] = {**common, "sample": section["sample"], "sources": digests("sample", *used)}
    return jobs


def all_settings(params: dict[str, Any]) -> dict[Path, dict[str, Any]]:
    """Every job's settings file (relative to the settings folder) and its content."""
    files = {Path("mirrors.json"): mirrors(params)}
    for data in run_datasets(params):
        files[Path("data") / f"{data}.json"] = {"dataset": data, "seed": params["seed"],
                                                "val_size": params["data"]["val_size"],
                                                "sources": digests("data")}
    for name in trained(params):
        for data, seed in runs(params, name):
            for job, settings in run_settings(params, name, seed, data).items():
                files[Path(name) / data / f"seed{seed}" / f"{job}.json"] = settings
        for data in datasets_of(params, name):
            files[Path(name) / data / "summarize.json"] = {
                "model": name, "dataset": data, "seeds": seeds_of(params, name),
                "sources": digests("summary")}
    files[Path("report.json")] = {**params["report"], "models": trained(params),
                                  "datasets": report_datasets(params),
                                  "sources": digests("report", files=(TEMPLATE,))}
    return files


def raw_sources(params: dict[str, Any]) -> list[str]:
    """The datasets whose raw files the run downloads, in order (colored_mnist is built from
    MNIST's)."""
    return list(dict.fromkeys(dataset(data).raw_source for data in run_datasets(params)))


def mirrors(params: dict[str, Any]) -> dict[str, list[str]]:
    """The mirrors each download of the run tries, by dataset: data.mirrors.<name>, or the
    dataset's official ones. No job takes this file as an input: any good mirror yields the
    same verified bytes, so editing the list reruns nothing."""
    return {name: list(params["data"]["mirrors"].get(name, dataset(name).mirrors))
            for name in raw_sources(params)}


def report_datasets(params: dict[str, Any]) -> list[dict[str, Any]]:
    """What the report says of each dataset of the run, in order: its title, variant and unit
    (nats per image for binary pixels, bits/dim for 256 levels, as papers report them), the
    models run on it, and each model of params.yaml not run on it with the reason."""
    described = []
    for data in run_datasets(params):
        variant = variant_of(data, params["data"]["variant"])
        models = [name for name in params["models"] if data in datasets_of(params, name)]
        refused = {name: dataset_problem(name, data, params["data"]["variant"])
                   or f"not in models.{name}.datasets" for name in params["models"] if name not in models}
        described.append({"name": data, "title": dataset_title(data, variant), "variant": variant,
                          "unit": "nats" if levels_of(variant) == 2 else "bits/dim",
                          "models": models, "refused": refused})
    return described


def dataset_title(data: str, variant: str) -> str:
    """The heading of a dataset's section: 'Binarized MNIST', 'Fashion-MNIST (256 levels)'."""
    title = dataset(data).title
    if variant == "binarized":
        return f"Binarized {title}"
    return f"{title} ({'RGB, ' if variant == 'rgb' else ''}256 levels)"


@dataclass
class Change:
    """One settings file rewritten: what it held before (None: it did not exist) and its times."""

    path: Path
    before: bytes | None
    times: tuple[int, int] | None  # (atime_ns, mtime_ns) before

    def undo(self) -> None:
        if self.before is None:
            self.path.unlink(missing_ok=True)
            return
        atomic_write_bytes(self.path, self.before)
        os.utime(self.path, ns=self.times)


def write_settings(params: dict[str, Any], root: Path = SETTINGS_DIR) -> list[Change]:
    """Write every job's settings file under ``root`` whose content changed; return the changes
    (``Change.undo`` puts a file back as it was, mtime included: a dry run leaves no trace)."""
    changes = []
    for relative, settings in all_settings(params).items():
        path = Path(root) / relative
        content = (json.dumps(settings, indent=1, sort_keys=True) + "\n").encode()
        before = path.read_bytes() if path.exists() else None
        if before != content:
            stat = path.stat() if before is not None else None
            changes.append(Change(path, before, stat and (stat.st_atime_ns, stat.st_mtime_ns)))
            atomic_write_bytes(path, content)
    return changes


def undo(changes: list[Change]) -> None:
    for change in reversed(changes):
        change.undo()


def read_settings(path: Path) -> dict[str, Any]:
    """A job's settings file, as written by ``write_settings``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing settings file {path}: run snakemake (or "
                                f"`python -m genzoo settings`) to write it")
    return json.loads(path.read_text())
