# evaluate_<model>: test NLL on the fixed test binarization.


rule evaluate:
    input:
        model="data/models/{model}/model.pt",
        history="data/models/{model}/history.json",
        test="data/processed/test.npz",
        code=model_sources("evaluate"),
    output:
        "reports/metrics/{model}.json",
    params:
        batch_size=config["evaluate"]["batch_size"],
    conda:
        ENV
    log:
        "logs/evaluate/{model}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m genzoo --threads {threads} evaluate --checkpoint {input.model} --test {input.test} "
        "--history {input.history} --batch-size {params.batch_size} --out {output} > {log} 2>&1"
