"""The check that every job fits a node of its SLURM partition (genzoo/cluster.py), on fake
sinfo outputs: no SLURM needed. tests/test_slurm.py runs it against the real test cluster."""

from __future__ import annotations

import subprocess

import pytest

from genzoo import cluster
from genzoo.cluster import Job, Node, SinfoError, gres_gpus, oversized, parse_sinfo, request_of

# `sinfo --noheader --Node --format=%P|%c|%m|%G` on the test cluster (.ci/slurm.sh) ...
ONE_NODE = "main*|2|21694|gpu:2\n"
# ... and on a site with a CPU partition and a GPU partition (a node may sit in both).
SITE = """\
cpu*|64|256000|(null)
cpu*|64|256000|(null)
gpu|32|512000|gpu:a100:4(S:0-1)
gpu|16|128000|gpu:v100:2,shard:8
long|8|32000|(null)
"""
TORCH_JOB = {"gpu": 1, "mem_mb": 8000, "runtime": 240}


def train(threads=2, name="model=made, seed=0", **resources):
    return Job("train", name, threads, {**TORCH_JOB, **resources})


def test_parse_sinfo_reads_every_node_and_the_default_partition():
    nodes = parse_sinfo(SITE)
    assert nodes.default == "cpu"
    assert nodes.partitions["cpu"] == [Node(64, 256000, 0)] * 2
    assert nodes.partitions["gpu"] == [Node(32, 512000, 4), Node(16, 128000, 2)]
    assert parse_sinfo(ONE_NODE).partitions == {"main": [Node(2, 21694, 2)]}


@pytest.mark.parametrize("gres, gpus", [("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4), ("gpu", 1),
                                        ("(null)", 0), ("", 0), ("shard:8", 0),
                                        ("gpu:v100:2,gpu:a100:1(S:0),mps:100", 3)])
def test_gres_gpus(gres, gpus):
    assert gres_gpus(gres) == gpus


@pytest.mark.parametrize("text", ["", "\n\n", "sinfo: error: Unable to contact slurm controller\n",
                                  "main*|two|lots|gpu:2\n", "PARTITION CPUS MEMORY GRES\nmain* 2 100 gpu:2\n"])
def test_odd_sinfo_output_is_an_error_not_a_verdict(text):
    with pytest.raises(SinfoError):
        parse_sinfo(text)


def test_odd_lines_are_skipped():
    nodes = parse_sinfo("garbage\n" + ONE_NODE + "main|?|?|?\n")
    assert nodes.partitions == {"main": [Node(2, 21694, 2)]}


def test_a_job_that_fits_is_not_reported():
    assert oversized([train(), train(name="model=nade, seed=1")], parse_sinfo(ONE_NODE)) == []


def test_too_many_threads_is_one_line_naming_the_rule_the_node_and_the_setting():
    jobs = [train(4), train(4, "model=nade, seed=0"), train(4, "model=nade, seed=1"),
            Job("evaluate", "model=made, seed=0", 2, TORCH_JOB)]
    assert oversized(jobs, parse_sinfo(ONE_NODE)) == [
        "rule train (model=made, seed=0, and 2 more jobs) asks for 4 CPUs, but the largest node in "
        "partition main has 2: lower it in the profile's set-threads"]


def test_memory_and_gpus():
    nodes = parse_sinfo(ONE_NODE)
    [memory] = oversized([train(mem_mb=40000)], nodes)
    assert memory.endswith("asks for 40000 MB of memory, but the largest node in partition main "
                           "has 21694: lower it in the profile's set-resources (mem_mb)")
    [gpus] = oversized([Job("sample", "", 1, {"gpu": 3})], nodes)
    assert gpus == ("rule sample asks for 3 GPUs, but the largest node in partition main has 2: "
                    "lower it in the profile's set-resources (gpu)")
    [per_cpu] = oversized([train(2, mem_mb=None, mem_mb_per_cpu=12000)], nodes)
    assert "asks for 24000 MB of memory" in per_cpu


def test_the_partition_is_the_jobs_own_or_the_default():
    nodes = parse_sinfo(SITE)
    # The default partition (cpu) has no GPU: a GPU job must name the gpu partition.
    assert oversized([train()], nodes) == [
        "rule train (model=made, seed=0) asks for 1 GPU, but the largest node in partition cpu "
        "has 0: lower it in the profile's set-resources (gpu)"]
    assert oversized([train(16, slurm_partition="gpu")], nodes) == []
    # A list of partitions: the job fits if one of them has a node for it.
    assert oversized([train(48, gpu=0, slurm_partition="long,cpu")], nodes) == []
    [line] = oversized([train(128, gpu=0, slurm_partition="long,cpu")], nodes)
    assert "asks for 128 CPUs, but the largest node in partition long or cpu has 64" in line


def test_every_amount_exists_but_not_on_one_node():
    job = train(24, gpu=4, mem_mb=200000, slurm_partition="gpu")
    assert oversized([job], parse_sinfo(SITE)) == []  # the a100 node has them all
    [line] = oversized([job], parse_sinfo("gpu|32|512000|gpu:2\ngpu|16|128000|gpu:4\n"))
    assert line == ("rule train (model=made, seed=0) asks for 24 CPUs, 200000 MB of memory, 4 GPUs, "
                    "but no node in partition gpu has all of them: lower them in the profile's "
                    "set-threads / set-resources")


def test_requests_follow_the_plugin():
    assert request_of(2, TORCH_JOB) == {"cpus": 2, "gpus": 1, "mem_mb": 8000}
    assert request_of(2, {"cpus_per_task": 8}) == {"cpus": 8, "gpus": 0}
    assert request_of(2, {"cpus_per_task": -1})["cpus"] == 0  # the plugin then asks for none
    assert request_of(2, {"gpu": 2, "cpus_per_gpu": 4})["cpus"] == 8
    assert request_of(1, {"gpu_model": "a100"})["gpus"] == 1
    assert request_of(1, {"gres": "gpu:tesla:2"})["gpus"] == 2
    assert request_of(1, {"mem_mb": "<TBD>"}) == {"cpus": 1, "gpus": 0}


def test_unknown_partitions_and_other_clusters_are_left_to_sbatch():
    nodes = parse_sinfo(ONE_NODE)
    assert oversized([train(64, slurm_partition="elsewhere")], nodes) == []
    assert oversized([train(64, slurm_cluster="other")], nodes) == []
    assert oversized([train(64, nodes=4)], nodes) == []


def test_read_sinfo_failures_are_sinfo_errors(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("sinfo")

    monkeypatch.setattr(subprocess, "run", missing)
    with pytest.raises(SinfoError, match="sinfo not found"):
        cluster.read_sinfo()

    def failing(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "sinfo: error: Unable to contact slurm controller (connect failure)\n")

    monkeypatch.setattr(subprocess, "run", failing)
    with pytest.raises(SinfoError, match="Unable to contact slurm controller"):
        cluster.read_sinfo()

    monkeypatch.setattr(subprocess, "run",
                        lambda *args, **kwargs: subprocess.CompletedProcess(args, 0, ONE_NODE, ""))
    assert cluster.read_sinfo().partitions == {"main": [Node(2, 21694, 2)]}
