# sample_<model>: one job per run (model, dataset, seed): the model's figures (the sample grid, one row per
# digit for conditional models, and what the model adds: completions, a latent interpolation,
# reconstructions) and the sample arrays.


rule sample:
    input:
        model=f"{RUN}/model.pt",
        phases=phase_files,
        test=f"{PROCESSED}/test.npz",
        settings=f"{SETTINGS}/sample.json",
    output:
        npz="data/samples/{model}/{dataset}/seed{seed}/samples.npz",
        figures=directory("reports/figures/{model}/{dataset}/seed{seed}"),
    params:
        run_dir=lambda wildcards, input: Path(input.model).parent,
    conda:
        ENV
    log:
        "logs/sample/{model}/{dataset}/seed{seed}.log",
    threads: job_threads
    shell:
        "python -m genzoo --threads {threads} sample --settings {input.settings} "
        "--run-dir {params.run_dir} --test {input.test} "
        "--out-npz {output.npz} --out-dir {output.figures} > {log} 2>&1"
