# sample_<model>: an 8x8 grid of samples.


rule sample:
    input:
        model="data/models/{model}/model.pt",
        code=model_sources("sample"),
    output:
        npz="data/samples/{model}/samples.npz",
        png="reports/figures/{model}/samples.png",
    params:
        section=sample_section,
        seed=config["seed"],
    conda:
        ENV
    log:
        "logs/sample/{model}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m genzoo --threads {threads} sample --checkpoint {input.model} --params {params.section:q} "
        "--seed {params.seed} --out-npz {output.npz} --out-png {output.png} > {log} 2>&1"
