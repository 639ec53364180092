# download -> binarize: the four verified MNIST files, then the 50k/10k/10k split.


localrules:
    download,


rule download:
    # Runs where the internet is (a login node on a cluster). The mirrors are read inside `run`
    # on purpose: any good mirror yields the same verified bytes, so editing the list (or
    # $GENZOO_DATA_MIRROR) reruns nothing.
    output:
        expand("data/raw/{name}", name=RAW_FILES),
    log:
        "logs/download.log",
    run:
        shell(f"python -m genzoo download --quiet --out-dir data/raw {mirror_args()} > {log} 2>&1")


rule binarize:
    input:
        raw=rules.download.output,
        settings="settings/data.json",
    output:
        expand("data/processed/{split}.npz", split=SPLITS),
    conda:
        ENV
    log:
        "logs/binarize.log",
    shell:
        "python -m genzoo binarize --settings {input.settings} --raw-dir data/raw "
        "--out-dir data/processed > {log} 2>&1"
