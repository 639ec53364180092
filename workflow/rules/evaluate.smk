# evaluate_<model>: one job per run (model, seed). Test NLL on the fixed test bits (and label
# agreement for conditional models); for the VAE, the IWAE bound and the ELBO; for the VQ-VAE,
# reconstruction, codebook usage and its prior's NLL (genzoo.latent); for the classifier, its test
# accuracy. summarize_<model> then gathers a model's runs: mean and std over the seeds.


rule evaluate:
    input:
        model="data/models/{model}/seed{seed}/model.pt",
        history="data/models/{model}/seed{seed}/history.json",
        test="data/processed/test.npz",
        classifier=classifier_input,
        prior=prior_input,
        prior_history=prior_history_input,
        code=model_sources("evaluate"),
    output:
        "reports/metrics/{model}/seed{seed}.json",
    params:
        batch_size=config["evaluate"]["batch_size"],
        agreement_samples=config["evaluate"]["agreement_samples"],
        classifier=lambda wildcards, input: f"--classifier {input.classifier}" if input.classifier else "",
        latent=latent_args,
    conda:
        ENV
    log:
        "logs/evaluate/{model}/seed{seed}.log",
    threads: 4
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=60,
    shell:
        "python -m genzoo --threads {threads} evaluate --model {wildcards.model} "
        "--checkpoint {input.model} --test {input.test} --history {input.history} "
        "{params.classifier} --agreement-samples {params.agreement_samples} --seed {wildcards.seed} "
        "--batch-size {params.batch_size} {params.latent} --out {output} > {log} 2>&1"


localrules:
    summarize,


rule summarize:
    input:
        runs=lambda wildcards: runs_of("reports/metrics/{model}/seed{seed}.json", [wildcards.model]),
        code=sources("summary"),
    output:
        "reports/metrics/{model}.json",
    conda:
        ENV
    log:
        "logs/summarize/{model}.log",
    shell:
        "python -m genzoo summarize --runs {input.runs} --out {output} > {log} 2>&1"
