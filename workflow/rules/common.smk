# Shared helpers: config validation, the model list, and the package sources each rule imports.

import json
import shlex
import sys
from pathlib import Path

# Validate with, and run every job on, the genzoo next to this Snakefile, whatever else is
# installed: the import path below, and every job's PYTHONPATH.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(SRC)}; ")

from genzoo.config import ParamsError, validate_params
from genzoo.data import RAW_FILES, SPLITS
from genzoo.models import model_class
from genzoo.sources import module_sources

try:
    config.update(validate_params(config, source="params.yaml"))
except ParamsError as error:
    raise WorkflowError(str(error)) from None

MODELS = list(config["models"])  # the zoo, as params.yaml lists it
TRAINED = MODELS + ["classifier"]  # everything trained: the zoo and the judge of samples
ENV = "../envs/genzoo.yaml"  # for --use-conda; relative to the rule files


wildcard_constraints:
    model="|".join(TRAINED),


def is_conditional(model):
    return model_class(model).conditional


def sources(*modules, extra=()):
    """Package files the command imports (Snakemake ignores edits to imported modules)."""
    base = Path(workflow.basedir)
    paths = [p.relative_to(base) for p in module_sources(*modules)]
    return [str(p) for p in paths] + list(extra)


def model_sources(stage):
    """Input function: the sources of `stage` plus the wildcard model's own module."""
    return lambda wildcards: sources(stage, f"models.{wildcards.model}")


def section_of(model):
    return config["classifier"] if model == "classifier" else config["models"][model]


def train_section(wildcards):
    """The params that change a trained model: architecture and training settings."""
    section = section_of(wildcards.model)
    return json.dumps({"arch": section["arch"], "train": section["train"]}, sort_keys=True)


def sample_section(wildcards):
    return json.dumps(config["models"][wildcards.model]["sample"], sort_keys=True)


def classifier_input(wildcards):
    """Conditional models are scored by the classifier; the others do not wait for it."""
    return ["data/models/classifier/model.pt"] if is_conditional(wildcards.model) else []


def mirror_args():
    return " ".join(f"--mirror {shlex.quote(m)}" for m in config["data"]["mirrors"])
