# evaluate_<model>: test NLL on the fixed test bits (and label agreement for conditional models);
# for the VAE, the IWAE bound and the ELBO; for the VQ-VAE, reconstruction, codebook usage and its
# prior's NLL (genzoo.latent); for the classifier, its test accuracy.


rule evaluate:
    input:
        model="data/models/{model}/model.pt",
        history="data/models/{model}/history.json",
        test="data/processed/test.npz",
        classifier=classifier_input,
        prior=prior_input,
        prior_history=prior_history_input,
        code=model_sources("evaluate"),
    output:
        "reports/metrics/{model}.json",
    params:
        batch_size=config["evaluate"]["batch_size"],
        agreement_samples=config["evaluate"]["agreement_samples"],
        seed=config["seed"],
        classifier=lambda wildcards, input: f"--classifier {input.classifier}" if input.classifier else "",
        latent=latent_args,
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
        "python -m genzoo --threads {threads} evaluate --model {wildcards.model} "
        "--checkpoint {input.model} --test {input.test} --history {input.history} "
        "{params.classifier} --agreement-samples {params.agreement_samples} --seed {params.seed} "
        "--batch-size {params.batch_size} {params.latent} --out {output} > {log} 2>&1"
