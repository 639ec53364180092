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

# One run per (model, seed): data/models/<model>/seed<s>/, reports/metrics/<model>/seed<s>.json,
# reports/figures/<model>/seed<s>/; reports/metrics/<model>.json summarizes a model's runs.


wildcard_constraints:
    model="|".join(TRAINED),
    seed=r"\d+",


def seeds_of(model):
    """A model's training seeds; the classifier, the one judge of every model, has one run."""
    return [config["seed"]] if model == "classifier" else config["models"][model]["seeds"]


def runs_of(pattern, models):
    """`pattern` (with {model} and {seed}) filled in for every run of `models`."""
    return [pattern.format(model=model, seed=seed) for model in models for seed in seeds_of(model)]


CLASSIFIER = runs_of("data/models/{model}/seed{seed}/model.pt", ["classifier"])[0]


def is_conditional(model):
    return model_class(model).conditional


def sources(*modules, extra=()):
    """Package files the command imports (Snakemake ignores edits to imported modules)."""
    base = Path(workflow.basedir)
    paths = [p.relative_to(base) for p in module_sources(*modules)]
    return [str(p) for p in paths] + list(extra)


LATENT = ("vae", "vqvae")  # scored and sampled by genzoo.latent
VQVAE_RUN = "data/models/vqvae/seed{seed}"  # the autoencoder, and under it codes/ and prior/
PRIOR_MODEL = f"{VQVAE_RUN}/prior/model.pt"
PRIOR_HISTORY = f"{VQVAE_RUN}/prior/history.json"


def prior_module():
    return f"models.{config['models']['vqvae']['prior']['kind']}"


def model_sources(stage):
    """Input function: the sources of `stage` plus the wildcard model's own module (and, for
    scoring and sampling the latent-variable models, genzoo.latent and the VQ-VAE's prior)."""

    def inputs(wildcards):
        modules = [stage, f"models.{wildcards.model}"]
        if stage != "train" and wildcards.model in LATENT:
            modules.append("latent")
            if wildcards.model == "vqvae":
                modules.append(prior_module())
        return sources(*modules)

    return inputs


def prior_section(wildcards):
    """Only the prior's params: editing them refits the prior, not the autoencoder."""
    return json.dumps(config["models"]["vqvae"]["prior"], sort_keys=True)


def prior_input(wildcards):
    """The VQ-VAE is scored and sampled through its run's fitted prior; other models need none."""
    return [PRIOR_MODEL.format(seed=wildcards.seed)] if wildcards.model == "vqvae" else []


def prior_history_input(wildcards):
    return [PRIOR_HISTORY.format(seed=wildcards.seed)] if wildcards.model == "vqvae" else []


def latent_args(wildcards, input):
    """Extra evaluate arguments: the IWAE settings for the VAE, the prior for the VQ-VAE."""
    if wildcards.model == "vae":
        settings = config["evaluate"]
        return f"--iwae-k {settings['iwae_k']} --iwae-batch-size {settings['iwae_batch_size']}"
    if wildcards.model == "vqvae":
        return f"--prior {input.prior} --prior-history {input.prior_history}"
    return ""


def section_of(model):
    return config["classifier"] if model == "classifier" else config["models"][model]


def train_section(wildcards):
    """The params that change a trained model: architecture and training settings (not the
    list of seeds: adding a seed adds runs and leaves the others alone)."""
    section = section_of(wildcards.model)
    return json.dumps({"arch": section["arch"], "train": section["train"]}, sort_keys=True)


def sample_section(wildcards):
    return json.dumps(config["models"][wildcards.model]["sample"], sort_keys=True)


def classifier_input(wildcards):
    """Conditional models are scored by the classifier; the others do not wait for it."""
    return [CLASSIFIER] if is_conditional(wildcards.model) else []


def mirror_args():
    return " ".join(f"--mirror {shlex.quote(m)}" for m in config["data"]["mirrors"])
