# train_<model>: one trainer for every model, one job per seed; best checkpoint by validation NLL.


rule train:
    input:
        train="data/processed/train.npz",
        val="data/processed/val.npz",
        code=model_sources("train"),
    output:
        model="data/models/{model}/seed{seed}/model.pt",
        history="data/models/{model}/seed{seed}/history.json",
    params:
        section=train_section,
        variant=config["data"]["variant"],
        eval_batch_size=config["evaluate"]["batch_size"],
        out_dir=lambda wildcards, output: Path(output.model).parent,
    conda:
        ENV
    log:
        "logs/train/{model}/seed{seed}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    shell:
        "python -m genzoo --threads {threads} train --model {wildcards.model} --params {params.section:q} "
        "--data-dir data/processed --out-dir {params.out_dir} --seed {wildcards.seed} "
        "--variant {params.variant} --eval-batch-size {params.eval_batch_size} > {log} 2>&1"
