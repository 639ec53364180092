# download_<source> -> prepare: each dataset's verified files, then its train/val/test split.
# A dataset built from another's files (colored_mnist from MNIST's) downloads nothing of its own.

for _source in RAW_SOURCES:

    rule:
        # Runs where the internet is (a login node on a cluster). The mirrors are read from
        # settings/mirrors.json when the job runs, on purpose not an input: any good mirror
        # yields the same verified bytes, so editing the list (or the dataset's mirror
        # variable) reruns nothing. (A shell command, not `run:`, which Snakemake 9 executes by
        # reading the workflow again without --replace-workflow-config.)
        name:
            f"download_{_source}"
        localrule: True
        output:
            raw_paths(_source),
        params:
            source=_source,
        conda:
            ENV
        log:
            f"logs/download/{_source}.log",
        shell:
            "python -m genzoo download --quiet --dataset {params.source} "
            "--out-dir data/raw/{params.source} --mirrors-from settings/mirrors.json > {log} 2>&1"


rule prepare:
    input:
        raw=lambda wildcards: raw_paths(raw_source(wildcards)),
        settings="settings/data/{dataset}.json",
    output:
        expand("data/processed/{{dataset}}/{split}.npz", split=SPLITS),
    params:
        raw_dir=lambda wildcards: f"data/raw/{raw_source(wildcards)}",
    conda:
        ENV
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "python -m genzoo prepare --settings {input.settings} --raw-dir {params.raw_dir} "
        "--out-dir data/processed/{wildcards.dataset} > {log} 2>&1"


# Every dataset of the run, downloaded and split (DVC's data stage asks for this).
rule datasets:
    localrule: True
    input:
        [path for data in DATASETS for path in split_files(data)],
