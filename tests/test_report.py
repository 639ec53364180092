"""The HTML report: one section per dataset; several seeds per model (mean ± std, ranking, runs,
curves, figures); the published figures in their own unit."""

from __future__ import annotations

import base64
import json
import math
import re
import statistics

import matplotlib.pyplot as plt
import numpy as np
import pytest

from genzoo.report import (Dataset, Run, curves_figure, curves_png, grids_figure,
                           histories_by_run, load_summary, model_rows, run_of_folder,
                           seconds_per_sample_by_model, write_report)
from genzoo.summary import summarize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_run(model, seed, nats, *, nll_kind="exact", dataset="mnist", variant="binarized",
             dimensions=784, **extra):
    """The metrics an evaluate job writes for one run: the model's score, its sample quality
    and the run's facts (evaluate.run_facts: checkpoint, history and the timings file)."""
    return {"model": model, "seed": seed, "dataset": dataset, "paper": f"{model} paper",
            "nll_kind": nll_kind, "variant": variant, "test_images": 100, "test_nll_nats": nats,
            "test_nll_nats_stderr": 0.5, "test_bits_per_dim": nats / (dimensions * math.log(2)),
            "fid": nats / 10, "precision": 0.5 + seed / 100, "recall": 0.25, "fid_samples": 500,
            "pr_neighbours": 3,
            "num_parameters": 1234, "best_epoch": 2, "steps": 300, "best_val_nll": nats + 1.0,
            "train_seconds": 60.0 + seed, "seconds_per_epoch": 20.0, "epochs_trained": 3,
            "train_device": "cpu", **extra}


def fake_history(model, seed, *, start=100.0, dataset="mnist"):
    """A history.json as the trainer writes it: the curve, no wall-clock times (those are in the
    timings files, and reach the report through the metrics)."""
    epochs = [{"epoch": e, "step": 100 * e, "train_loss": start - 3 * e, "val_nll": start - 2 * e}
              for e in (1, 2, 3)]
    return {"epochs": epochs, "model": model, "seed": seed, "dataset": dataset,
            "variant": "binarized",
            "num_parameters": 1234, "steps": 300, "best_epoch": 3, "best_val_nll": start - 6}


def write_png(path, value):
    """A real 2x2 PNG whose grey level (and so whose bytes) is ``value`` (0..255)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, np.full((2, 2), value, dtype=float), cmap="gray", vmin=0, vmax=255)


def write_rgb_png(path, seed):
    """A real RGB sample grid: 4x4 random colour images of 8x8 pixels with a black gap."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.random.default_rng(seed).integers(0, 256, (4, 4, 8, 8, 3), dtype=np.uint8)
    grid = np.zeros((4 * 9, 4 * 9, 3), dtype=np.uint8)
    for row in range(4):
        for column in range(4):
            grid[9 * row:9 * row + 8, 9 * column:9 * column + 8] = images[row, column]
    plt.imsave(path, grid)


def write_json(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def data_uri(path):
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


# nade: seed 0 alone would beat made, its mean over two seeds does not.
RUNS = {
    "nade": [fake_run("nade", 0, 87.0), fake_run("nade", 1, 95.0)],
    "made": [fake_run("made", 0, 88.0)],
    "vae": [fake_run("vae", 2, 86.0, nll_kind="bound", iwae_k=20, neg_elbo_nats=90.0,
                     neg_elbo_bits_per_dim=0.17),
            fake_run("vae", 1, 85.0, nll_kind="bound", iwae_k=20, neg_elbo_nats=89.0,
                     neg_elbo_bits_per_dim=0.16)],
}
CLASSIFIER = {"model": "classifier", "seed": 0, "dataset": "mnist", "paper": "LeCun et al. 1998",
              "variant": "grayscale", "test_images": 100, "test_accuracy": 0.98,
              "test_label_nll_nats": 0.05, "num_parameters": 5000, "floor_fid": 0.75,
              "floor_precision": 0.875, "floor_recall": 0.8125, "floor_fid_samples": 500,
              "floor_pr_neighbours": 3}


def write_runs(root, runs_by_model, *, dataset="mnist", png=write_png):
    """Summaries, histories, figure folders and timings of a fake zoo on one dataset, laid out
    as the pipeline does; ``png(path, n)`` draws each figure (every one its own bytes)."""
    metrics, histories, figures, timings = [], [], [], []
    numbers = iter(range(0, 256, 10))
    for model, runs in runs_by_model.items():
        metrics.append(write_json(root / f"reports/metrics/{model}/{dataset}.json", summarize(runs)))
        for run in runs:
            seed = run["seed"]
            histories.append(write_json(root / f"data/models/{model}/{dataset}/seed{seed}/history.json",
                                        fake_history(model, seed, dataset=dataset)))
            if model == "classifier":
                continue
            folder = root / f"reports/figures/{model}/{dataset}/seed{seed}"
            png(folder / "samples.png", next(numbers))
            png(folder / "completions.png", next(numbers))
            figures.append(folder)
            timings.append(write_json(
                root / f"reports/timings/{model}/{dataset}/seed{seed}/evaluate.json",
                {"model": model, "dataset": dataset, "seed": seed, "fid_samples": 500,
                 "sample_seconds": 5.0 + seed, "seconds_per_sample": (5.0 + seed) / 500,
                 "evaluate_seconds": 9.0}))
    return metrics, histories, figures, timings


@pytest.fixture
def zoo(tmp_path):
    """A fake zoo's report on mnist, with no datasets listed (one section, as before them)."""
    metrics, histories, figures, timings = write_runs(tmp_path, {**RUNS, "classifier": [CLASSIFIER]})
    out = tmp_path / "reports/all.html"
    write_report(out, metrics=metrics, histories=histories, figures=figures, timings=timings,
                 title="fake zoo")
    return tmp_path, out.read_text(), (metrics, histories, figures)


def summary_rows(html, dataset="mnist"):
    """A dataset's summary table's rows by model, as HTML."""
    table = dataset_section(html, dataset).split("<h3>Summary</h3>", 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in table.split("<tr>")[2:]:  # past the header row
        rows[re.search(rf'href="#{dataset}-(\w+)"', row).group(1)] = row
    return rows


def dataset_section(html, dataset):
    """A dataset's part of the page, up to the next dataset's."""
    return html.split(f'<section class="dataset" id="{dataset}">', 1)[1].split(
        '<section class="dataset"', 1)[0]


def section(html, model, dataset="mnist"):
    return html.split(f'id="{dataset}-{model}"', 1)[1].split("</section>", 1)[0]


def test_summary_table_shows_mean_std_and_seed_count(zoo):
    rows = summary_rows(zoo[1])
    std = statistics.stdev([87.0, 95.0])
    assert f"91.00 ± {std:.2f}" in rows["nade"] and "(2 seeds)" in rows["nade"]
    bits_std = std / (784 * math.log(2))
    assert f"{91.0 / (784 * math.log(2)):.4f} ± {bits_std:.4f}" in rows["nade"]
    assert "≤ </span>85.50 ± 0.71" in rows["vae"] and "(2 seeds)" in rows["vae"]


def test_a_single_seed_shows_neither_spread_nor_seed_count(zoo):
    row = summary_rows(zoo[1])["made"]
    assert "88.00" in row and "±" not in row and "seeds" not in row
    made = section(zoo[1], "made")
    assert "± one standard error" in made and 'class="runs"' not in made
    assert "Means over" not in made


def test_models_are_ranked_by_their_mean_nll(zoo):
    assert list(summary_rows(zoo[1])) == ["vae", "made", "nade"]
    rows, classifier = model_rows(*zoo[2])
    assert [row["model"] for row in rows] == ["vae", "made", "nade"]
    assert classifier["test_accuracy"] == 0.98


def test_sections_list_the_seeds_and_a_table_of_runs(zoo):
    nade = section(zoo[1], "nade")
    assert "Means over 2 seeds (0, 1)" in nade and "mean ± std over 2 seeds" in nade
    runs = nade.split('class="runs"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<tr>\s*<td class="num">(\d+)</td>', runs) == ["0", "1"]  # the seeds
    assert "87.000 ± 0.500" in runs and "95.000 ± 0.500" in runs
    assert runs.index("87.000") < runs.index("95.000")  # in seed order
    assert "61.0" in runs  # seed 1's own training time, not the mean


def test_only_the_lowest_seeds_figures_are_embedded(zoo):
    tmp_path, html, _ = zoo
    figures = tmp_path / "reports/figures"
    assert data_uri(figures / "vae/mnist/seed1/samples.png") in html
    assert data_uri(figures / "vae/mnist/seed2/samples.png") not in html
    assert data_uri(figures / "nade/mnist/seed0/completions.png") in html
    assert data_uri(figures / "nade/mnist/seed1/completions.png") not in html
    vae = section(html, "vae")
    assert "figures of seed 1" in vae and f"{figures / 'vae/mnist/seed2'}/" in vae
    assert "Seed 1. Samples" in vae
    assert "Seed 0. " not in section(html, "made")  # a single run needs no seed label
    # One curves image per model, plus its first seed's two figures, plus every model's samples
    # side by side.
    assert html.count("data:image/png;base64,") == 3 * len(RUNS) + 1


def test_curves_draw_every_seed_in_its_own_colour():
    figure = curves_figure([fake_history("nade", 1, start=90.0), fake_history("nade", 0)])
    lines = figure.axes[0].get_lines()
    plt.close(figure)
    assert len(lines) == 4  # validation and train loss per seed
    (val_0, train_0), (val_1, train_1) = lines[:2], lines[2:]
    assert val_0.get_linestyle() == "-" and train_0.get_linestyle() == "--"
    assert val_0.get_color() == train_0.get_color() != val_1.get_color() == train_1.get_color()
    assert list(val_0.get_ydata()) == [98.0, 96.0, 94.0]  # seed 0 first, whatever the order given
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["seed 0", "seed 1", "validation NLL", "train loss"]
    assert curves_png([fake_history("nade", 0), fake_history("nade", 1)]).startswith(PNG_SIGNATURE)


def before_datasets(record, *also):
    """``record`` as written before the datasets (no ``dataset`` key) and without ``also``."""
    return {key: value for key, value in record.items() if key not in ("dataset", *also)}


def test_an_old_single_run_metrics_file_still_renders(tmp_path):
    run = before_datasets(fake_run("made", 0, 88.0))
    metrics = tmp_path / "made.json"
    metrics.write_text(json.dumps(run))  # no runs, seeds or std: written before the seeds
    history = tmp_path / "history.json"
    history.write_text(json.dumps(before_datasets(fake_history("made", 0), "seed")))
    folder = tmp_path / "figures/made"  # an old unseeded folder
    write_png(folder / "samples.png", 30)
    assert run_of_folder(folder) == Run("made", "mnist", None)
    summary = load_summary(metrics)
    assert summary["seeds"] == [0] and summary["runs"] == [run] and summary["std"] == {}

    out = tmp_path / "all.html"
    write_report(out, metrics=[metrics], histories=[history], figures=[folder])
    html = out.read_text()
    assert 'id="mnist-made"' in html and "88.000 ± 0.500 nats" in html
    assert "<h2>mnist (binarized)</h2>" in html and 'class="contents"' not in html
    assert "± one standard error" in html
    assert data_uri(folder / "samples.png") in html
    assert html.count("data:image/png;base64,") == 3  # curves, samples, the side-by-side grids
    assert "seeds" not in summary_rows(html)["made"]


def test_summary_table_shows_sample_quality_the_floor_and_seconds_per_sample(zoo):
    html = zoo[1]
    header = html.split("<h3>Summary</h3>", 1)[1].split("</tr>", 1)[0]
    assert all(f"<th>{name}</th>" in header for name in ("FID", "precision", "recall", "s / sample"))
    rows = summary_rows(html)
    std = statistics.stdev([8.7, 9.5])
    assert f"9.10 ± {std:.2f}" in rows["nade"]  # FID: mean ± std over the seeds
    assert "0.505 ± 0.007" in rows["nade"] and "0.250" in rows["nade"]
    assert "8.80" in rows["made"] and "0.500" in rows["made"] and "±" not in rows["made"]
    assert "0.0110" in rows["nade"]  # (5 + 6) / 2 / 500 seconds per sample, from the timings
    assert "0.0100" in rows["made"]
    floor = html.split('<tr class="floor">', 1)[1].split("</tr>", 1)[0]
    assert "0.75" in floor and "0.875" in floor and "0.812" in floor and "500 real" in floor
    assert "500 samples per run" in html and "k = 3 nearest" in html
    assert "biased upwards" in html  # what FID at a small n means
    made = " ".join(section(html, "made").split())
    assert "FID 8.80, precision 0.500, recall 0.250 on 500 samples (floor: FID 0.75)" in made


def test_one_figure_puts_every_models_samples_side_by_side(zoo):
    tmp_path, html, (metrics, histories, figures) = zoo
    assert "Every model's samples side by side" in html
    figures_dir = tmp_path / "reports/figures"
    grids = [("vae", figures_dir / "vae/mnist/seed1/samples.png"),
             ("made", figures_dir / "made/mnist/seed0/samples.png")]
    figure = grids_figure(grids, per_row=5)
    titles = [axis.get_title() for axis in figure.axes if axis.get_title()]
    shown = [axis for axis in figure.axes if axis.get_images()]
    plt.close(figure)
    assert titles == ["vae", "made"] and len(shown) == 2
    # The page's figure is built from the shown seed's grids, in the summary table's order.
    rows, _ = model_rows(metrics, histories, figures)
    assert [(row["model"], row["samples_png"]) for row in rows] == [
        ("vae", figures_dir / "vae/mnist/seed1/samples.png"),
        ("made", figures_dir / "made/mnist/seed0/samples.png"),
        ("nade", figures_dir / "nade/mnist/seed0/samples.png")]
    assert seconds_per_sample_by_model([]) == {}


def gan_history(seed):
    """A history of a model without a validation NLL: two losses per epoch, the last kept."""
    epochs = [{"epoch": e, "step": 10 * e, "generator_loss": 2.0 + e, "discriminator_loss": 1.0 / e}
              for e in (1, 2, 3)]
    return {"epochs": epochs, "model": "gan", "seed": seed, "variant": "binarized",
            "num_parameters": 10, "steps": 30, "best_epoch": 3, "best_val_nll": None}


def test_curves_draw_every_series_a_history_holds():
    figure = curves_figure([gan_history(0)])
    lines = figure.axes[0].get_lines()
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    plt.close(figure)
    assert legend == ["seed 0", "generator loss", "discriminator loss"]
    assert [list(line.get_ydata()) for line in lines] == [[3.0, 4.0, 5.0], [1.0, 0.5, 1 / 3]]
    assert [line.get_linestyle() for line in lines] == ["-", "--"]


def test_a_model_without_likelihood_shows_its_losses_and_mode_coverage(tmp_path):
    shares = [0.1] * 8 + [0.05, 0.15]
    run = fake_run("gan", 0, 0.0, nll_kind="none", best_val_nll=None, best_epoch=3,
                   label_histogram=shares, label_histogram_kl_nats=0.031,
                   label_histogram_samples=1000)
    for key in ("test_nll_nats", "test_nll_nats_stderr", "test_bits_per_dim", "test_images"):
        run.pop(key)
    metrics, history = tmp_path / "gan.json", tmp_path / "history.json"
    metrics.write_text(json.dumps(summarize([run])))
    history.write_text(json.dumps(gan_history(0)))
    out = tmp_path / "all.html"
    write_report(out, metrics=[metrics], histories=[history], figures=[])
    gan = section(out.read_text(), "gan")
    assert "none: this model defines no image likelihood" in gan
    assert "no validation NLL: the last epoch is kept" in gan
    assert "Per epoch: generator loss, discriminator loss" in gan
    assert "mode coverage" in gan and "8: 5.0 % · 9: 15.0 %" in gan and "0.031 nats" in gan


def test_a_diffusion_bound_says_how_it_was_computed(tmp_path):
    run = fake_run("ddpm", 0, 650.0, nll_kind="bound", diffusion_timesteps=1000,
                   bound_estimator="unbiased: 2 step(s) t ~ U{2..1000} per image",
                   bound_timesteps=2, bound_prior_nats=0.016, bound_decoder_nats=0.0,
                   bound_diffusion_nats=649.984, bound_timestep_stderr_nats=43.5)
    runs = [run, {**run, "seed": 1, "test_nll_nats": 660.0, "bound_timestep_stderr_nats": None}]
    metrics = tmp_path / "ddpm.json"
    metrics.write_text(json.dumps(summarize(runs[:1])))
    folder = tmp_path / "figures/ddpm/seed0"
    write_png(folder / "samples.png", 30)
    write_png(folder / "chain.png", 60)
    history = tmp_path / "history.json"
    history.write_text(json.dumps(fake_history("ddpm", 0)))
    out = tmp_path / "all.html"
    write_report(out, metrics=[metrics], histories=[history], figures=[folder])
    html = out.read_text()
    assert "computed as: unbiased: 2 step(s) t ~ U{2..1000} per image" in html
    assert "T = 1000" in html and "43.50 nats" in html and "Denoising chains" in html
    metrics.write_text(json.dumps(summarize(runs[1:])))  # K = 1: no error of the t draws
    write_report(out, metrics=[metrics], histories=[history], figures=[folder])
    assert "draw of t alone" not in out.read_text()


# CIFAR-10: 32 x 32 x 3 values per image; vae runs on both datasets, pixelcnn on CIFAR-10 only.
CIFAR = {"dataset": "cifar10", "variant": "rgb", "dimensions": 3072}
CIFAR_RUNS = {
    "pixelcnn": [fake_run("pixelcnn", 0, 7000.0, **CIFAR)],
    "vae": [fake_run("vae", 0, 7500.0, nll_kind="bound", iwae_k=20, neg_elbo_nats=7600.0,
                     neg_elbo_bits_per_dim=3.57, **CIFAR),
            fake_run("vae", 1, 7700.0, nll_kind="bound", iwae_k=20, neg_elbo_nats=7800.0,
                     neg_elbo_bits_per_dim=3.66, **CIFAR)],
}
CIFAR_JUDGE = {**CLASSIFIER, "dataset": "cifar10", "variant": "rgb", "test_accuracy": 0.75,
               "floor_fid": 2.5}
REFUSED = {"nade": "NADE models binary pixels of one channel",
           "made": "MADE models binary pixels of one channel"}
DATASETS = [
    {"name": "mnist", "title": "Binarized MNIST", "variant": "binarized", "unit": "nats",
     "models": ["nade", "made", "vae"], "refused": {}},
    {"name": "cifar10", "title": "CIFAR-10 (RGB, 256 levels)", "variant": "rgb",
     "unit": "bits/dim", "models": ["pixelcnn", "vae"], "refused": REFUSED},
]


def bits(nats, dimensions=3072):
    return nats / (dimensions * math.log(2))


@pytest.fixture
def two_datasets(tmp_path):
    """A fake run on binarized MNIST and CIFAR-10 (RGB sample grids), reported by the CLI from
    settings that list both."""
    from genzoo.cli import main

    files = [sum(lists, []) for lists in zip(
        write_runs(tmp_path, {**RUNS, "classifier": [CLASSIFIER]}),
        write_runs(tmp_path, {**CIFAR_RUNS, "classifier": [CIFAR_JUDGE]}, dataset="cifar10",
                   png=write_rgb_png))]
    metrics, histories, figures, timings = files
    settings = write_json(tmp_path / "settings/report.json",
                          {"title": "two datasets", "models": [], "sources": {},
                           "datasets": DATASETS})
    out = tmp_path / "reports/all.html"
    assert main(["report", "--metrics", *map(str, metrics), "--history", *map(str, histories),
                 "--figures", *map(str, figures), "--timings", *map(str, timings),
                 "--settings", str(settings), "--out", str(out)]) == 0
    return tmp_path, out.read_text()


def test_two_datasets_get_a_section_each_with_their_own_models_and_judge(two_datasets):
    tmp_path, html = two_datasets
    contents = html.split('<nav class="contents">', 1)[1].split("</nav>", 1)[0]
    assert contents.index('href="#mnist"') < contents.index('href="#cifar10"')
    assert html.index('id="mnist"') < html.index('id="cifar10"')  # the settings' order
    assert list(summary_rows(html, "mnist")) == ["vae", "made", "nade"]
    assert list(summary_rows(html, "cifar10")) == ["pixelcnn", "vae"]
    mnist, cifar = dataset_section(html, "mnist"), dataset_section(html, "cifar10")
    assert "<h2>Binarized MNIST</h2>" in mnist and "<h2>CIFAR-10 (RGB, 256 levels)</h2>" in cifar
    assert "98.00 % accuracy" in mnist and "75.00 % accuracy" in cifar  # each its own judge
    assert "98.00 %" not in cifar and "pixelcnn" not in mnist
    floor = cifar.split('<tr class="floor">', 1)[1].split("</tr>", 1)[0]
    assert "2.50" in floor
    # vae ran on both: each section shows that dataset's runs, figures and timings.
    figures = tmp_path / "reports/figures/vae"
    vae = section(html, "vae", "cifar10")
    assert data_uri(figures / "cifar10/seed0/samples.png") in vae
    assert data_uri(figures / "mnist/seed1/samples.png") not in vae
    assert f"{bits(7500.0):.4f} ± {bits(0.5):.4f}" in vae and "7500.000" in vae  # seed 0's run
    assert "86.000" not in vae
    assert "0.0110" in summary_rows(html, "cifar10")["vae"]  # (5 + 6) / 2 / 500 s per sample
    assert "Binarization" in mnist and "Binarization" not in cifar
    assert mnist.count("side by side") == cifar.count("side by side") == 2  # caption and alt


def test_a_refused_model_is_listed_in_its_datasets_section(two_datasets):
    html = two_datasets[1]
    cifar = " ".join(dataset_section(html, "cifar10").split())
    assert ("Not run on this dataset: nade (NADE models binary pixels of one channel), "
            "made (MADE models binary pixels of one channel).") in cifar
    assert "Not run on this dataset" not in dataset_section(html, "mnist")
    assert "(2 not run on it)" in html.split("</nav>", 1)[0]


def test_a_256_level_dataset_leads_with_bits_per_dim(two_datasets):
    html = two_datasets[1]
    cifar = dataset_section(html, "cifar10")
    header = cifar.split("<h3>Summary</h3>", 1)[1].split("</tr>", 1)[0]
    assert header.index("<th>test NLL (bits/dim)</th>") < header.index("<th>nats</th>")
    row = summary_rows(html, "cifar10")["pixelcnn"]
    assert row.index(f"{bits(7000.0):.4f}") < row.index("7000.00")
    assert "3.14 bits/dim (van den Oord et al. 2016a (ICML), Table 5, PixelCNN)" in row
    vae = summary_rows(html, "cifar10")["vae"]
    assert f"≤ </span>{bits(7600.0):.4f} ± {bits(141.42):.4f}" in vae
    pixelcnn = " ".join(section(html, "pixelcnn", "cifar10").split())
    assert (f"<th>test NLL</th><td class=\"num\">{bits(7000.0):.4f} ± {bits(0.5):.4f} bits/dim"
            in pixelcnn)
    assert "<th>nats</th><td class=\"num\">7000.000</td>" in pixelcnn
    assert f"3.14 bits/dim — " in pixelcnn and f"(ours: {bits(7000.0):.4f} bits/dim)" in pixelcnn
    assert "no figure published on CIFAR-10 (RGB, 256 levels) for this model" in section(
        html, "vae", "cifar10")
    assert "the sum over its 3,072 values" in cifar and "(3,072 ln 2)" in cifar
    # Binarized MNIST leads with nats, as papers on it do.
    mnist = dataset_section(html, "mnist")
    assert "<th>test NLL (nats)</th><th>bits/dim</th>" in mnist and "(784 ln 2)" in mnist
    assert "88.04 nats" in summary_rows(html)["made"]


def test_a_dataset_without_published_figures_says_so(tmp_path):
    run = fake_run("made", 0, 300.0, dataset="fashion_mnist", variant="grayscale")
    metrics = write_json(tmp_path / "reports/metrics/made/fashion_mnist.json", summarize([run]))
    fashion = Dataset.from_settings({"name": "fashion_mnist", "title": "Fashion-MNIST (256 levels)",
                                     "variant": "grayscale"})
    assert fashion.unit == "bits/dim"  # the unit papers on 256-level images use
    out = tmp_path / "all.html"
    write_report(out, metrics=[metrics], histories=[], figures=[], datasets=[fashion])
    html = out.read_text()
    assert "No published figures for this dataset." in html and "<th>published</th>" not in html
    assert "<h2>Fashion-MNIST (256 levels)</h2>" in html and "256 levels:" in html
    assert "<th>test NLL (bits/dim)</th>" in html


def test_old_files_without_a_dataset_render_under_mnist(tmp_path):
    """A summary, history, figures folder and timing of an older run (the layout before the
    datasets, no ``dataset`` keys) beside a new CIFAR-10 summary."""
    runs = [before_datasets(fake_run("made", seed, 88.0 + seed)) for seed in (0, 1)]
    metrics = [write_json(tmp_path / "reports/metrics/made.json", summarize(runs)),
               write_json(tmp_path / "reports/metrics/pixelcnn/cifar10.json",
                          summarize(CIFAR_RUNS["pixelcnn"]))]
    history = write_json(tmp_path / "data/models/made/seed0/history.json",
                         before_datasets(fake_history("made", 0)))
    folder = tmp_path / "reports/figures/made/seed0"
    write_png(folder / "samples.png", 40)
    timing = write_json(tmp_path / "reports/timings/made/seed0/evaluate.json",
                        {"model": "made", "seed": 0, "seconds_per_sample": 0.25})
    out = tmp_path / "all.html"
    write_report(out, metrics=metrics, histories=[history], figures=[folder], timings=[timing],
                 datasets=[Dataset.from_settings(entry) for entry in DATASETS])
    html = out.read_text()
    assert list(summary_rows(html, "mnist")) == ["made"]
    assert list(summary_rows(html, "cifar10")) == ["pixelcnn"]
    made = section(html, "made")
    assert data_uri(folder / "samples.png") in made and "training curves of made" in made
    assert "0.2500" in summary_rows(html, "mnist")["made"]
    # Without datasets in the settings, every dataset found gets a section, in the files' order.
    write_report(out, metrics=metrics, histories=[history], figures=[folder])
    html = out.read_text()
    assert html.index('id="mnist"') < html.index('id="cifar10"')
    assert "<h2>cifar10 (rgb)</h2>" in html and "<th>test NLL (bits/dim)</th>" in html


def test_runs_are_placed_by_their_json_then_by_their_path(tmp_path):
    history = fake_history("vae", 3, dataset="cifar10")
    paths = [write_json(tmp_path / "data/models/vae/cifar10/seed3/history.json",
                        before_datasets(history)),  # the path says the dataset
             write_json(tmp_path / "elsewhere/history.json", history),  # the JSON says it all
             write_json(tmp_path / "data/models/vae/seed4/history.json",
                        before_datasets(fake_history("vae", 4)))]  # older: mnist
    grouped = histories_by_run(paths)
    assert sorted(grouped) == [("cifar10", "vae"), ("mnist", "vae")]
    assert list(grouped["cifar10", "vae"]) == [3] and list(grouped["mnist", "vae"]) == [4]
    assert run_of_folder(tmp_path / "reports/figures/vae/cifar10/seed3") == Run("vae", "cifar10", 3)
    assert run_of_folder(tmp_path / "reports/figures/vae/seed3") == Run("vae", "mnist", 3)
    with pytest.raises(ValueError, match="not a run's figures folder"):
        run_of_folder(tmp_path / "somewhere/vae/cifar10/seed3")
    timing = write_json(tmp_path / "reports/timings/vae/cifar10/seed3/evaluate.json",
                        {"model": "vae", "seconds_per_sample": 0.5})
    assert seconds_per_sample_by_model([timing]) == {("cifar10", "vae"): 0.5}


def test_a_dataset_entry_is_checked():
    entry = {"name": "cifar10", "title": "CIFAR-10", "variant": "rgb"}
    assert Dataset.from_settings(entry).unit == "bits/dim"
    assert Dataset.from_settings({"name": "mnist"}).unit == "nats"
    with pytest.raises(ValueError, match="variant 'colour'"):
        Dataset.from_settings({**entry, "variant": "colour"})
    with pytest.raises(ValueError, match="unit 'bits'"):
        Dataset.from_settings({**entry, "unit": "bits"})
