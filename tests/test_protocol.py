"""The model protocol: what the registry holds, what every model declares, the judge that is not a
model, and the rule that nothing above ``genzoo/models/`` knows a model by name."""

from __future__ import annotations

import ast
import dataclasses
import io
import tokenize
from pathlib import Path

import pytest
import torch

from conftest import REPO
from genzoo.config import ParamsError
from genzoo.data import Split
from genzoo.models import (JUDGE, MODELS, NETWORKS, GenerativeModel, ScoreSettings, Trainable,
                           build_model, model_class)
from genzoo.models.base import NLL_KINDS
from genzoo.models.classifier import Classifier, ClassifierConfig

# Models not written yet but planned: their names must not creep into the stages either.
PLANNED = ("lstm", "wavenet", "transformer", "pixelsnail", "dcgan", "ddpm", "ae", "dae", "pixelvae",
           "pix2pix", "cppn")
FORBIDDEN = frozenset(NETWORKS) | frozenset(PLANNED)  # the zoo, the judge and the planned models


# -- no model names above models/ ----------------------------------------------------------------

def model_name_literals(text: str, names=FORBIDDEN) -> list[tuple[int, str]]:
    """(line, value) of every string literal in Python or Snakemake source whose value is one of
    ``names`` (f-string parts included); comments are not string tokens, so they may name models."""
    found = []
    fstring_middle = getattr(tokenize, "FSTRING_MIDDLE", None)  # Python >= 3.12
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.STRING:
            tree = ast.parse(token.string.strip(), mode="eval")
            values = [node.value for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str)]
        elif fstring_middle is not None and token.type == fstring_middle:
            values = [token.string]
        else:
            continue
        found += [(token.start[0], value) for value in values if value in names]
    return found


def stage_files() -> list[Path]:
    """The package above models/ (but the table of published figures, which is by model) and the
    workflow."""
    package = REPO / "src" / "genzoo"
    files = [path for path in sorted(package.glob("*.py")) if path.name != "references.py"]
    return files + [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]


@pytest.mark.parametrize("snippet, expected", [
    ('if args.model == "vae":\n    pass\n', [(1, "vae")]),
    ("kind = 'ddpm'\n", [(1, "ddpm")]),
    ('x = 1\nif name in ("made", "nade"):\n    x = 2\n', [(2, "made"), (2, "nade")]),
    ('label = f"{prefix}" if flag else f"vqvae"\n', [(1, "vqvae")]),
    ("models = [\n    'pixelcnn',\n]\n", [(2, "pixelcnn")]),
    ('if name == "classifier":\n    pass\n', [(1, "classifier")]),
    ('rule train:\n    input:\n        "data/models/{model}/mnist/seed0/model.pt",\n    params:\n'
     '        kind="gated_pixelcnn",\n', [(5, "gated_pixelcnn")]),  # Snakemake syntax
    ('# the "vae" and "made" models are fine in a comment\nx = 1  # so is "nade"\n', []),
    ('"""How the vae scores itself."""\npath = "models/vae.py"\nname = "vaes"\n', []),
])
def test_the_checker_finds_model_names_in_string_literals(snippet, expected):
    assert model_name_literals(snippet) == expected


def test_no_model_names_above_models():
    files = stage_files()
    names = {path.name for path in files}
    assert {"cli.py", "settings.py", "train.py", "evaluate.py", "sample.py", "report.py",
            "Snakefile", "common.smk", "train.smk"} <= names, "the check would pass vacuously"
    found = {str(path.relative_to(REPO)): hits for path in files
             if (hits := model_name_literals(path.read_text()))}
    assert found == {}, f"model names in the stages (use the model's class instead): {found}"


# -- the registry and what every model declares ------------------------------------------------------

def test_the_judge_is_trained_but_not_a_model_of_the_zoo():
    assert JUDGE not in MODELS and NETWORKS == {**MODELS, JUDGE: Classifier}
    assert model_class(JUDGE) is Classifier
    assert issubclass(Classifier, Trainable) and not issubclass(Classifier, GenerativeModel)
    classifier = Classifier(ClassifierConfig(channels=2, features=8))
    assert not isinstance(classifier, GenerativeModel)
    assert not hasattr(Classifier, "sample") and not hasattr(classifier, "sample")
    assert not hasattr(classifier, "nll_kind") and not hasattr(classifier, "log_prob")
    assert [phase.name for phase in Classifier.phases] == ["floor"]  # real images scored as samples
    assert not Classifier.needs_judge()


def test_the_judge_scores_its_accuracy():
    torch.manual_seed(0)
    classifier = Classifier(ClassifierConfig(channels=2, features=8), levels=256).eval()
    gray = torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))
    test = Split(gray=gray, labels=torch.arange(30) % 10)
    metrics = classifier.score(test, ScoreSettings(batch_size=7), variant="grayscale",
                               generator=torch.Generator().manual_seed(0))
    assert set(metrics) == {"test_images", "test_accuracy", "test_label_nll_nats"}
    predicted = classifier.predict(test.images("grayscale"))
    assert metrics["test_images"] == 30
    assert metrics["test_accuracy"] == pytest.approx((predicted == test.labels).double().mean().item())
    with torch.no_grad():
        nll = classifier.validation_nll(test.images("grayscale"), test.labels).mean().item()
    assert metrics["test_label_nll_nats"] == pytest.approx(nll, rel=1e-5)
    with pytest.raises(ValueError, match="labels"):
        classifier.validation_nll(test.images("grayscale"))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_declares_the_protocol(name):
    cls = MODELS[name]
    assert cls.__module__ == f"genzoo.models.{name}", "a model is named after its file"
    assert issubclass(cls, GenerativeModel) and cls.nll_kind in NLL_KINDS
    assert dataclasses.is_dataclass(cls.Config) and cls.paper.strip()
    knobs = {field.name for field in dataclasses.fields(ScoreSettings)}
    assert set(cls.evaluate_keys()) <= knobs, "score reads a knob the evaluate job never gets"
    assert "batch_size" in cls.evaluate_keys()
    assert ("agreement_samples" in cls.evaluate_keys()) == (cls.conditional or cls.mode_coverage)
    # Every generative model is judged on its samples: FID, precision and recall.
    assert cls.needs_judge() and {"fid_samples", "pr_neighbours"} <= set(cls.evaluate_keys())
    assert cls.has_validation_nll == (cls.nll_kind != "none"), "a model without NLL validates none"
    sections = cls.section_schemas() if hasattr(cls, "section_schemas") else {}
    for phase in cls.phases:
        assert callable(getattr(cls, phase.run, None)), f"{name}.{phase.run} is no method"
        assert phase.section is None or phase.section in sections
        assert set(phase.evaluate_keys) <= knobs and phase.outputs
    assert len({phase.name for phase in cls.phases}) == len(cls.phases)
    assert not {phase.name for phase in cls.phases} & {"train", "evaluate", "sample"}


def test_what_the_models_declare():
    assert MODELS["cond_gated_pixelcnn"].needs_judge()
    assert MODELS["vae"].evaluate_keys() == ("batch_size", "iwae_k", "iwae_batch_size",
                                             "fid_samples", "pr_neighbours")
    assert [phase.name for phase in MODELS["vqvae"].phases] == ["codes", "prior"]
    assert MODELS["vqvae"].networks_used({"prior": {"kind": "cond_gated_pixelcnn"}}) == [
        "cond_gated_pixelcnn"]
    assert {MODELS[name].nll_kind for name in ("vae", "vqvae")} == {"bound"}
    assert Classifier.score_settings == ("batch_size",)


def test_build_model_checks_the_name_and_the_arch():
    with pytest.raises(ValueError, match=r"unknown model 'no_such_model'; known: .*independent"):
        model_class("no_such_model")
    with pytest.raises(ParamsError, match=r"models\.made\.arch: unknown key hiden"):
        build_model("made", {"hiden": [3]}, image_shape=(1, 4, 4), levels=2)
    model = build_model("made", {"hidden": [3]}, image_shape=(1, 4, 4), levels=2)
    assert model.describe() == {"config": {"hidden": [3], "ordering": "natural", "mask_seed": 0},
                                "image_shape": [1, 4, 4], "levels": 2, "num_classes": 10}
