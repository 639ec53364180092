# sample_<model>: one job per run (model, seed). The sample grid (one row per digit for
# conditional models) and, for autoregressive models, completions of the top half of test images;
# for the VAE a latent interpolation strip, for the VQ-VAE samples through its prior and
# reconstructions.


rule sample:
    input:
        model="data/models/{model}/seed{seed}/model.pt",
        test="data/processed/test.npz",
        prior=prior_input,
        code=model_sources("sample"),
    output:
        npz="data/samples/{model}/seed{seed}/samples.npz",
        figures=directory("reports/figures/{model}/seed{seed}"),
    params:
        section=sample_section,
        prior=lambda wildcards, input: f"--prior {input.prior}" if input.prior else "",
    conda:
        ENV
    log:
        "logs/sample/{model}/seed{seed}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m genzoo --threads {threads} sample --checkpoint {input.model} "
        "--params {params.section:q} --test {input.test} --seed {wildcards.seed} {params.prior} "
        "--out-npz {output.npz} --out-dir {output.figures} > {log} 2>&1"
