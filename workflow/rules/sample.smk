# sample_<model>: the sample grid (one row per digit for conditional models) and, for
# autoregressive models, completions of the top half of test images.


rule sample:
    input:
        model="data/models/{model}/model.pt",
        test="data/processed/test.npz",
        code=model_sources("sample"),
    output:
        npz="data/samples/{model}/samples.npz",
        figures=directory("reports/figures/{model}"),
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
        "python -m genzoo --threads {threads} sample --checkpoint {input.model} "
        "--params {params.section:q} --test {input.test} --seed {params.seed} "
        "--out-npz {output.npz} --out-dir {output.figures} > {log} 2>&1"
