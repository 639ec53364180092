"""Each job's settings file (genzoo.settings): exactly the params the job uses and the digests of
the sources it imports, rewritten only when that content changes, so an edit reruns exactly the
jobs it affects."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

import genzoo
from genzoo import settings as settings_module
from genzoo import sources
from genzoo.config import ParamsError, validate_params
from genzoo.settings import all_settings, digests, run_settings, write_settings

ZOO = {
    "seed": 5,  # the data's seed and the judge's single run
    "seeds": [0, 1],
    "models": {
        "made": {"arch": {"hidden": [8]}},
        "nade": {"seeds": [0]},
        "vae": {"seeds": [0]},
        "vqvae": {"seeds": [0], "prior": {"arch": {"channels": 4}}},
        "cond_gated_pixelcnn": {"seeds": [0]},
        "ddpm": {"seeds": [0]},
    },
}


def params(**edits) -> dict:
    """The validated ZOO with ``edits`` applied: dotted key path -> value."""
    raw = copy.deepcopy(ZOO)
    for dotted, value in edits.items():
        *parents, key = dotted.split(".")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[key] = value
    return validate_params(raw)


def write(values: dict, folder: Path) -> set[str]:
    """write_settings, and the files it reports as rewritten, relative to ``folder``."""
    result = write_settings(values, folder)
    return {str(Path(getattr(item, "path", item)).relative_to(folder)) for item in result}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    folder = tmp_path_factory.mktemp("written") / "settings"
    write_settings(params(), folder)
    return folder


@pytest.fixture
def root(tmp_path, written):
    """A settings folder with every file of ZOO written once (a copy, modification times kept)."""
    folder = tmp_path / "settings"
    shutil.copytree(written, folder)
    return folder


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*.json"))}


def test_the_first_write_writes_every_file_and_the_second_nothing(tmp_path):
    folder = tmp_path / "settings"
    first = write(params(), folder)
    assert first == {str(path) for path in all_settings(params())}
    assert {"data/mnist.json", "report.json", "made/mnist/seed0/train.json", "made/mnist/seed1/train.json",
            "made/mnist/summarize.json", "vqvae/mnist/seed0/codes.json", "vqvae/mnist/seed0/prior.json",
            "classifier/mnist/seed5/train.json", "classifier/mnist/seed5/evaluate.json"} <= first
    before = snapshot(folder)
    assert write(params(), folder) == set()
    assert snapshot(folder) == before  # same bytes, same modification times


@pytest.mark.parametrize("edit, value, expected", [
    ("evaluate.iwae_k", 7, {"vae/mnist/seed0/evaluate.json"}),
    ("evaluate.agreement_samples", 30, {"cond_gated_pixelcnn/mnist/seed0/evaluate.json"}),
    ("evaluate.fid_samples", 50, {"made/mnist/seed0/evaluate.json", "made/mnist/seed1/evaluate.json",
                                  "nade/mnist/seed0/evaluate.json", "vae/mnist/seed0/evaluate.json",
                                  "vqvae/mnist/seed0/evaluate.json", "ddpm/mnist/seed0/evaluate.json",
                                  "cond_gated_pixelcnn/mnist/seed0/evaluate.json",
                                  "classifier/mnist/seed5/floor.json"}),
    ("evaluate.bound_timesteps", 4, {"ddpm/mnist/seed0/evaluate.json"}),
    ("models.made.arch.hidden", [16], {"made/mnist/seed0/train.json", "made/mnist/seed1/train.json"}),
    ("models.made.train.lr", 0.01, {"made/mnist/seed0/train.json", "made/mnist/seed1/train.json"}),
    ("models.made.sample.n", 4, {"made/mnist/seed0/sample.json", "made/mnist/seed1/sample.json"}),
    ("models.vqvae.prior.arch.channels", 8, {"vqvae/mnist/seed0/prior.json"}),
    ("models.vqvae.prior.train.lr", 0.01, {"vqvae/mnist/seed0/prior.json"}),
    ("models.vqvae.arch.codes", 16, {"vqvae/mnist/seed0/train.json"}),
    ("classifier.train.lr", 0.01, {"classifier/mnist/seed5/train.json"}),
    ("report.title", "another zoo", {"report.json"}),
    ("data.val_size", 5000, {"data/mnist.json"}),
    ("models.made.train.val_images", 100, {"made/mnist/seed0/train.json",
                                           "made/mnist/seed1/train.json"}),
    ("models.made.priority", 3, set()),  # scheduling only: no job reads it
])
def test_an_edit_rewrites_only_the_files_of_the_jobs_that_read_it(root, edit, value, expected):
    before = snapshot(root)
    assert write(params(**{edit: value}), root) == expected
    after = snapshot(root)
    assert {key for key in after if after[key] != before[key]} == expected


def test_a_new_seed_or_model_adds_its_files_and_touches_no_other_run(root):
    before = snapshot(root)
    result = write(params(**{"models.nade.seeds": [0, 3]}), root)
    assert result == {"nade/mnist/seed3/train.json", "nade/mnist/seed3/evaluate.json", "nade/mnist/seed3/sample.json",
                      "nade/mnist/summarize.json"}
    result = write(params(**{"models.nade.seeds": [0, 3], "models.independent": {}}), root)
    assert result == {"independent/mnist/seed0/train.json", "independent/mnist/seed1/train.json",
                      "independent/mnist/seed0/evaluate.json", "independent/mnist/seed1/evaluate.json",
                      "independent/mnist/seed0/sample.json", "independent/mnist/seed1/sample.json",
                      "independent/mnist/summarize.json", "report.json"}
    after = snapshot(root)
    rewritten = {"report.json", "nade/mnist/summarize.json"}  # the report's and nade's lists of runs
    assert all(after[key] == value for key, value in before.items() if key not in rewritten)


def test_a_job_holds_only_the_params_it_uses(root):
    made = json.loads((root / "made/mnist/seed1/train.json").read_text())
    assert set(made) == {"model", "dataset", "seed", "variant", "arch", "train", "eval_batch_size", "sources"}
    assert (made["model"], made["seed"], made["variant"]) == ("made", 1, "binarized")
    assert made["arch"] == params()["models"]["made"]["arch"]
    evaluate = {name: json.loads((root / f"{name}/mnist/seed0/evaluate.json").read_text())
                for name in ("made", "vae", "vqvae", "cond_gated_pixelcnn", "ddpm")}
    knobs = {name: set(job) - {"model", "dataset", "seed", "variant", "sources"} for name, job in evaluate.items()}
    quality = {"fid_samples", "pr_neighbours"}  # every generative model's samples are scored
    assert knobs == {"made": {"batch_size"} | quality,
                     "vae": {"batch_size", "iwae_k", "iwae_batch_size"} | quality,
                     "vqvae": {"batch_size"} | quality,
                     "cond_gated_pixelcnn": {"batch_size", "agreement_samples"} | quality,
                     "ddpm": {"batch_size", "bound_timesteps"} | quality}
    sample = json.loads((root / "made/mnist/seed0/sample.json").read_text())
    assert set(sample) == {"model", "dataset", "seed", "variant", "sample", "sources"}


def test_the_judges_settings(root):
    folder = root / "classifier/mnist"
    assert sorted(path.name for path in folder.iterdir()) == ["seed5", "summarize.json"]
    assert sorted(path.name for path in (folder / "seed5").iterdir()) == ["evaluate.json",
                                                                         "floor.json", "train.json"]
    train = json.loads((folder / "seed5/train.json").read_text())
    assert train["model"] == "classifier" and train["seed"] == 5
    assert train["arch"] == params()["classifier"]["arch"]
    assert train["train"] == params()["classifier"]["train"]
    evaluate = json.loads((folder / "seed5/evaluate.json").read_text())
    assert set(evaluate) == {"model", "dataset", "seed", "variant", "batch_size", "sources"}
    floor = json.loads((folder / "seed5/floor.json").read_text())
    assert set(floor) == {"model", "dataset", "seed", "variant", "phase", "batch_size", "fid_samples",
                          "pr_neighbours", "sources"}
    assert "genzoo/quality.py" in floor["sources"]
    assert json.loads((folder / "summarize.json").read_text())["seeds"] == [5]
    assert "classifier" in json.loads((root / "report.json").read_text())["models"]


def test_the_vqvae_phases_read_only_their_section(root):
    section = params()["models"]["vqvae"]
    codes = json.loads((root / "vqvae/mnist/seed0/codes.json").read_text())
    prior = json.loads((root / "vqvae/mnist/seed0/prior.json").read_text())
    common = {"model", "dataset", "seed", "variant", "phase", "batch_size", "sources"}
    assert set(codes) == common and codes["phase"] == "codes"
    assert set(prior) == common | {"prior"} and prior["phase"] == "prior"
    assert prior["prior"] == section["prior"] and prior["prior"]["arch"]["channels"] == 4
    # The prior's own network file is a source of the jobs that build it, not of the codes.
    assert "genzoo/models/gated_pixelcnn.py" in prior["sources"]
    assert "genzoo/models/vqvae.py" in codes["sources"] and "genzoo/train.py" in codes["sources"]
    evaluate = json.loads((root / "vqvae/mnist/seed0/evaluate.json").read_text())
    assert "genzoo/models/gated_pixelcnn.py" in evaluate["sources"]
    # Another kind of prior: its file becomes a source of the prior, evaluate and sample jobs.
    result = write(params(**{"models.vqvae.prior.kind": "cond_gated_pixelcnn"}), root)
    assert result == {"vqvae/mnist/seed0/prior.json", "vqvae/mnist/seed0/evaluate.json",
                      "vqvae/mnist/seed0/sample.json"}
    prior = json.loads((root / "vqvae/mnist/seed0/prior.json").read_text())
    assert "genzoo/models/cond_gated_pixelcnn.py" in prior["sources"]


def test_digests_cover_the_imported_package_files():
    found = digests("train", "models.made")
    assert {"genzoo/train.py", "genzoo/models/made.py", "genzoo/models/base.py",
            "genzoo/checkpoint.py", "genzoo/data.py"} <= set(found)
    # The registry imports every model: adding one to the zoo must not rerun the others.
    assert "genzoo/models/__init__.py" not in found and "genzoo/models/nade.py" not in found
    assert all(len(value) == 16 for value in found.values())
    jobs = run_settings(params(), "made", 0)
    assert jobs["train"]["sources"] == found
    assert "genzoo/train.py" not in jobs["evaluate"]["sources"]
    assert "genzoo/evaluate.py" in jobs["evaluate"]["sources"]
    assert "genzoo/sample.py" in jobs["sample"]["sources"]


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the genzoo sources that the digests read, to edit without touching the real ones."""
    real = Path(genzoo.__file__).parent
    copy_dir = tmp_path / "copy" / "genzoo"
    shutil.copytree(real, copy_dir, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sources, "PACKAGE_DIR", copy_dir)
    monkeypatch.setattr(settings_module, "PACKAGE_DIR", copy_dir)
    monkeypatch.setattr(settings_module, "TEMPLATE", copy_dir / "templates" / "report.html.j2")
    return copy_dir


def test_editing_a_source_file_changes_the_settings_of_the_jobs_that_import_it(tmp_path, package_copy):
    folder = tmp_path / "settings"
    write_settings(params(), folder)
    before = digests("train", "models.made")

    with open(package_copy / "models" / "made.py", "a") as handle:
        handle.write("\n# an edit\n")
    after = digests("train", "models.made")
    assert after["genzoo/models/made.py"] != before["genzoo/models/made.py"]
    assert {key: value for key, value in after.items() if key != "genzoo/models/made.py"} == {
        key: value for key, value in before.items() if key != "genzoo/models/made.py"}
    assert write(params(), folder) == {
        f"made/mnist/seed{seed}/{job}.json" for seed in (0, 1) for job in ("train", "evaluate", "sample")}

    with open(package_copy / "train.py", "a") as handle:
        handle.write("\n# an edit\n")
    trains = {f"{run}/mnist/seed{seed}" for run, seed in (
        ("made", 0), ("made", 1), ("nade", 0), ("vae", 0), ("vqvae", 0), ("cond_gated_pixelcnn", 0),
        ("ddpm", 0), ("classifier", 5))}
    assert write(params(), folder) == (
        {f"{run}/train.json" for run in trains} | {"vqvae/mnist/seed0/codes.json", "vqvae/mnist/seed0/prior.json",
                                                   "classifier/mnist/seed5/floor.json"})

    with open(package_copy / "templates" / "report.html.j2", "a") as handle:
        handle.write("\n")
    assert write(params(), folder) == {"report.json"}


# -- datasets: which models run where, checked before any job ----------------------------------

def test_each_model_runs_on_every_dataset_it_can_model_by_default(tmp_path):
    values = params(**{"data.dataset": ["mnist", "colored_mnist"],  # colour: channels in thirds
                       "models.cond_gated_pixelcnn.arch": {"channels": 12, "head_channels": 12}})
    assert values["models"]["nade"]["datasets"] == ["mnist"]  # NADE: binary pixels only
    assert values["models"]["cond_gated_pixelcnn"]["datasets"] == ["mnist", "colored_mnist"]
    written = write(values, tmp_path)
    assert {"data/mnist.json", "data/colored_mnist.json", "nade/mnist/seed0/train.json",
            "cond_gated_pixelcnn/colored_mnist/seed0/train.json",
            "classifier/colored_mnist/seed5/train.json"} <= written
    assert not any(path.startswith("nade/colored_mnist") for path in written)
    colour = json.loads((tmp_path / "cond_gated_pixelcnn/colored_mnist/seed0/train.json").read_text())
    assert (colour["dataset"], colour["variant"]) == ("colored_mnist", "rgb")
    report = json.loads((tmp_path / "report.json").read_text())
    described = {entry["name"]: entry for entry in report["datasets"]}
    assert list(described) == ["mnist", "colored_mnist"]
    assert described["mnist"]["unit"] == "nats" and described["colored_mnist"]["unit"] == "bits/dim"
    assert "nade" in described["mnist"]["models"] and not described["mnist"]["refused"]
    assert "cond_gated_pixelcnn" in described["colored_mnist"]["models"]
    assert described["colored_mnist"]["refused"]["nade"].startswith("cannot model colored_mnist")


def test_a_dataset_a_model_cannot_model_is_refused_in_one_line():
    with pytest.raises(ParamsError) as error:
        params(**{"data.dataset": ["mnist", "colored_mnist"], "models.made.datasets": ["colored_mnist"]})
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("params.yaml: models.made.datasets: made cannot model colored_mnist "
                              "(3x28x28, 256 levels): ")


def test_a_model_with_nothing_it_can_model_is_refused():
    with pytest.raises(ParamsError, match=r"models\.made: made cannot model colored_mnist"):
        params(**{"data.dataset": "colored_mnist"})


def test_a_models_dataset_must_be_one_of_the_runs():
    with pytest.raises(ParamsError, match=r"models\.made\.datasets: fashion_mnist is not in data\.dataset \(mnist\)"):
        params(**{"models.made.datasets": ["fashion_mnist"]})


def test_grayscale_variant_reaches_the_grey_datasets_and_their_levels():
    values = params(**{"data.dataset": ["mnist", "fashion_mnist"], "data.variant": "grayscale",
                       "models": {"cond_gated_pixelcnn": {}}})
    jobs = run_settings(values, "cond_gated_pixelcnn", 0, "fashion_mnist")
    assert jobs["train"]["variant"] == "grayscale" and jobs["train"]["dataset"] == "fashion_mnist"


def test_a_setting_that_cannot_take_the_data_is_refused_at_validation_not_in_training():
    """The class takes colour, but 32 channels do not split into three colour groups."""
    with pytest.raises(ParamsError) as error:
        params(**{"data.dataset": ["mnist", "colored_mnist"],
                  "models": {"pixelcnn": {"arch": {"channels": 32, "head_channels": 32}}}})
    message = str(error.value)
    assert "models.pixelcnn.datasets: pixelcnn cannot model colored_mnist (3x28x28, 256 levels): " in message
    assert "divisible by 3" in message


def test_zoo_narrows_the_run_to_the_models_it_names(tmp_path):
    values = params(zoo=["nade", "made"])
    assert list(values["models"]) == ["nade", "made"]
    assert not any(path.startswith("vae/") for path in write(values, tmp_path))
    with pytest.raises(ParamsError, match=r"^params\.yaml: zoo: pixelcnn has no section in models "
                                          r"\(models: made, nade, vae, vqvae, cond_gated_pixelcnn, ddpm\)$"):
        params(zoo=["made", "pixelcnn"])
