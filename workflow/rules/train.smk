# train_<model>: one trainer for every model; best checkpoint by validation NLL.


rule train:
    input:
        train="data/processed/train.npz",
        val="data/processed/val.npz",
        code=model_sources("train"),
    output:
        model="data/models/{model}/model.pt",
        history="data/models/{model}/history.json",
    params:
        section=train_section,
        seed=config["seed"],
        variant=config["data"]["variant"],
        eval_batch_size=config["evaluate"]["batch_size"],
    conda:
        ENV
    log:
        "logs/train/{model}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    shell:
        "python -m genzoo --threads {threads} train --model {wildcards.model} --params {params.section:q} "
        "--data-dir data/processed --out-dir data/models/{wildcards.model} --seed {params.seed} "
        "--variant {params.variant} --eval-batch-size {params.eval_batch_size} > {log} 2>&1"
