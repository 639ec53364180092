"""Jobs too big for every node of their SLURM partition, found before any job is submitted.

SLURM takes a job that asks for more CPUs than any node of its partition has and leaves it
pending for ever (reason ``PartitionConfig``), and Snakemake says nothing; it refuses one that asks
for too much memory or too many GPUs, but only when Snakemake gets to submit it, perhaps hours
into a run. The workflow's ``onstart`` (``workflow/rules/common.smk``) hands every job about to run
to :func:`oversized`, which compares it with the nodes ``sinfo`` lists for its partition and
returns one line per rule that asks for more than any of them has.

The requests are read as snakemake-executor-plugin-slurm turns them into ``sbatch`` options:
CPUs are the job's threads (``--cpus-per-task``) unless the resource ``cpus_per_task`` (or, for a
GPU job, ``cpus_per_gpu``) says otherwise; memory is ``mem_mb`` (``--mem``, per node) or
``mem_mb_per_cpu`` times the CPUs; GPUs are ``gpu`` (``--gpus``; 1 with a ``gpu_model``) or the
count in a ``gres: gpu:N`` / ``gpu:<type>:N``.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

# One line per (node, partition): the partition ("main*": the default one), CPUs, memory (MB)
# and generic resources ("gpu:2", "gpu:a100:4(S:0-1),shard:8", "(null)").
SINFO = ["sinfo", "--noheader", "--Node", "--format=%P|%c|%m|%G"]

# Where a too-big request is lowered (the SLURM profile, workflow/profiles/slurm/config.yaml).
WHERE = {"cpus": "set-threads", "mem_mb": "set-resources (mem_mb)",
         "gpus": "set-resources (gpu)"}
UNIT = {"cpus": "CPU", "mem_mb": "MB of memory", "gpus": "GPU"}


def amount(key: str, value: int) -> str:
    """4 CPUs, 1 GPU, 8000 MB of memory."""
    plural = "s" if value != 1 and key != "mem_mb" else ""
    return f"{value} {UNIT[key]}{plural}"


class SinfoError(Exception):
    """sinfo is missing, failed, or printed nothing this module can read."""


@dataclass(frozen=True)
class Node:
    cpus: int
    mem_mb: int
    gpus: int

    def offers(self, request: Mapping[str, int]) -> bool:
        return all(getattr(self, key) >= value for key, value in request.items())


@dataclass
class Nodes:
    """The nodes of each partition, and the default partition (None if sinfo marks none)."""

    partitions: dict[str, list[Node]]
    default: str | None


def _number(text: str) -> int:
    """'2', '21694', '2+' (a summary) -> the leading integer."""
    match = re.match(r"\s*(\d+)", text)
    if not match:
        raise ValueError(text)
    return int(match.group(1))


def gres_gpus(gres: str) -> int:
    """GPUs in a gres string: 'gpu:2' -> 2, 'gpu:a100:4(S:0-1),shard:8' -> 4, 'gpu' -> 1,
    '(null)' -> 0."""
    total = 0
    for entry in re.split(r",(?![^(]*\))", gres or ""):  # commas outside "(S:0-1)"
        fields = re.sub(r"\(.*?\)", "", entry).strip().split(":")
        if fields[0] != "gpu":
            continue
        count = re.match(r"\d+", fields[-1]) if len(fields) > 1 else None
        total += int(count.group(0)) if count else 1
    return total


def parse_sinfo(text: str) -> Nodes:
    """The output of SINFO; raises SinfoError when no line can be read."""
    partitions: dict[str, list[Node]] = {}
    default = None
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 4:
            continue
        name, cpus, mem, gres = fields
        try:
            node = Node(cpus=_number(cpus), mem_mb=_number(mem), gpus=gres_gpus(gres))
        except ValueError:
            continue
        if name.endswith("*"):
            name = name[:-1]
            default = name
        if name:
            partitions.setdefault(name, []).append(node)
    if not partitions:
        shown = text.strip().splitlines()[:1]
        raise SinfoError(f"no node in its output{': ' + repr(shown[0]) if shown else ''}")
    return Nodes(partitions, default)


def read_sinfo(timeout: float = 30) -> Nodes:
    try:
        done = subprocess.run(SINFO, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise SinfoError("sinfo not found") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SinfoError(str(error)) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise SinfoError(f"sinfo failed: {last}")
    return parse_sinfo(done.stdout)


def _int(value: Any) -> int | None:
    """A resource value as an int (None when unset or not a number yet, e.g. <TBD>)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def request_of(threads: int, resources: Mapping[str, Any]) -> dict[str, int]:
    """What one job asks of one node, as the SLURM plugin turns it into sbatch options."""
    gpus = _int(resources.get("gpu")) or 0
    if resources.get("gpu_model") and not gpus:
        gpus = 1
    gpus = gpus or gres_gpus(str(resources.get("gres") or ""))
    cpus = threads
    per_task, per_gpu = _int(resources.get("cpus_per_task")), _int(resources.get("cpus_per_gpu"))
    if per_task:
        cpus = max(per_task, 1) if per_task > 0 else 0  # < 0: the plugin asks for no CPUs
    elif gpus and per_gpu and per_gpu > 0:
        cpus = per_gpu * gpus
    request = {"cpus": cpus, "gpus": gpus}
    mem, per_cpu = _int(resources.get("mem_mb")), _int(resources.get("mem_mb_per_cpu"))
    if per_cpu:
        request["mem_mb"] = per_cpu * max(cpus, 1)
    elif mem:
        request["mem_mb"] = mem
    return request


@dataclass
class Job:
    """One job about to be submitted: its rule, how it is shown, and what it asks for."""

    rule: str
    name: str  # e.g. "model=made, seed=0"; "" for a rule without wildcards
    threads: int
    resources: Mapping[str, Any]


def partitions_of(job: Job, nodes: Nodes) -> list[str] | None:
    """The partitions the job may run in (None: unknown, not checked)."""
    wanted = job.resources.get("slurm_partition")
    if wanted:
        return [name.strip() for name in str(wanted).split(",") if name.strip()]
    if nodes.default is not None:
        return [nodes.default]
    return list(nodes.partitions)  # no default partition: the plugin submits without -p


def _largest(nodes: list[Node]) -> dict[str, int]:
    return {key: max(getattr(node, key) for node in nodes) for key in ("cpus", "mem_mb", "gpus")}


def problem(job: Job, nodes: Nodes) -> tuple[str, str] | None:
    """(what, why) when no node of the job's partitions can run it, else None. `what` is the
    request in words ("4 CPUs"), `why` what the largest node has and where to lower it."""
    if any(job.resources.get(key) for key in ("slurm_cluster", "cluster", "clusters", "mpi")):
        return None  # another cluster's nodes, or several nodes: not checked
    if (_int(job.resources.get("nodes")) or 1) > 1:
        return None
    names = partitions_of(job, nodes)
    known = [node for name in names or [] for node in nodes.partitions.get(name, [])]
    if not known:
        return None  # a partition sinfo does not list: sbatch names it
    request = {key: value for key, value in request_of(job.threads, job.resources).items() if value}
    if any(node.offers(request) for node in known):
        return None
    where = " or ".join(names) if len(names) > 1 else names[0]
    largest = _largest(known)
    over = [key for key in ("cpus", "mem_mb", "gpus") if request.get(key, 0) > largest[key]]
    if over:
        key = over[0]
        return (amount(key, request[key]),
                f"the largest node in partition {where} has {largest[key]}: lower it in the "
                f"profile's {WHERE[key]}")
    # Each amount exists on some node, but no node has them all at once.
    asked = ", ".join(amount(key, request[key]) for key in ("cpus", "mem_mb", "gpus") if key in request)
    return (asked, f"no node in partition {where} has all of them: lower them in the profile's "
                   f"set-threads / set-resources")


def oversized(jobs: Iterable[Job], nodes: Nodes) -> list[str]:
    """One line per rule whose jobs no node can run, naming the first such job by name:
    'rule train (model=made, seed=0, and 7 more jobs) asks for 4 CPUs, but the largest node in
    partition main has 2: lower it in the profile's set-threads'."""
    found: dict[str, list[tuple[Job, tuple[str, str]]]] = {}
    for job in jobs:
        trouble = problem(job, nodes)
        if trouble:
            found.setdefault(job.rule, []).append((job, trouble))
    lines = []
    for rule, bad in sorted(found.items()):  # the same line every time (jobs come in a set's order)
        job, (what, why) = min(bad, key=lambda item: item[0].name)
        more = f"and {len(bad) - 1} more job{'s' if len(bad) > 2 else ''}" if len(bad) > 1 else ""
        label = ", ".join(part for part in (job.name, more) if part)
        lines.append(f"rule {rule}{f' ({label})' if label else ''} asks for {what}, but {why}")
    return lines
