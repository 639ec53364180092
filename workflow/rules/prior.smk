# The VQ-VAE's second phase, after each train_vqvae run: encode_codes maps every split to code
# grids with the run's trained encoder, fit_prior fits the autoregressive prior over them (same
# seed). fit_prior's params are the prior's section alone, so editing it refits the priors (then
# evaluate/sample of the VQ-VAE and the report) and leaves the autoencoders and their codes alone.


rule encode_codes:
    input:
        model=f"{VQVAE_RUN}/model.pt",
        data=expand("data/processed/{split}.npz", split=SPLITS),
        code=sources("latent", "models.vqvae"),
    output:
        expand(f"{VQVAE_RUN}/codes/{{split}}.npz", split=SPLITS, allow_missing=True),
    params:
        batch_size=config["evaluate"]["batch_size"],
        out_dir=lambda wildcards, output: Path(output[0]).parent,
    conda:
        ENV
    log:
        "logs/encode_codes/seed{seed}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m genzoo --threads {threads} encode --checkpoint {input.model} "
        "--data-dir data/processed --out-dir {params.out_dir} --seed {wildcards.seed} "
        "--batch-size {params.batch_size} > {log} 2>&1"


rule fit_prior:
    input:
        train=f"{VQVAE_RUN}/codes/train.npz",
        val=f"{VQVAE_RUN}/codes/val.npz",
        code=lambda wildcards: sources("latent", "train", prior_module()),
    output:
        model=PRIOR_MODEL,
        history=PRIOR_HISTORY,
    params:
        section=prior_section,
        eval_batch_size=config["evaluate"]["batch_size"],
        codes_dir=lambda wildcards, input: Path(input.train).parent,
        out_dir=lambda wildcards, output: Path(output.model).parent,
    conda:
        ENV
    log:
        "logs/fit_prior/seed{seed}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    shell:
        "python -m genzoo --threads {threads} fit-prior --params {params.section:q} "
        "--codes-dir {params.codes_dir} --out-dir {params.out_dir} --seed {wildcards.seed} "
        "--eval-batch-size {params.eval_batch_size} > {log} 2>&1"
