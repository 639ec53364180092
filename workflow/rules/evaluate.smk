# evaluate_<model>: one job per run (model, dataset, seed). The model scores itself (exact NLL, a bound,
# label agreement with the judge, or the judge's own accuracy) with the evaluate knobs its
# settings file holds, and every generative model's samples get FID, precision and recall on the
# judge's features; the seconds that took go to the run's timings, not its metrics.
# summarize then gathers a model's runs on one dataset: mean and std over the seeds.


rule evaluate:
    input:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.json",
        phases=phase_files,
        timings=timings_files,
        judge=judge_input,
        test=f"{PROCESSED}/test.npz",
        settings=f"{SETTINGS}/evaluate.json",
    output:
        metrics="reports/metrics/{model}/{dataset}/seed{seed}.json",
        timings=f"{TIMINGS}/evaluate.json",
    params:
        run_dir=lambda wildcards, input: Path(input.model).parent,
        judge=lambda wildcards, input: f"--judge {input.judge}" if input.judge else "",
    conda:
        ENV
    log:
        "logs/evaluate/{model}/{dataset}/seed{seed}.log",
    threads: job_threads
    shell:
        "python -m genzoo --threads {threads} evaluate --settings {input.settings} "
        "--run-dir {params.run_dir} --test {input.test} {params.judge} "
        "--timings {input.timings} --timings-out {output.timings} --out {output.metrics} > {log} 2>&1"


localrules:
    summarize,


rule summarize:
    input:
        runs=lambda wildcards: seed_runs("reports/metrics/{model}/{dataset}/seed{seed}.json", wildcards),
        settings="settings/{model}/{dataset}/summarize.json",
    output:
        SUMMARY,
    conda:
        ENV
    log:
        "logs/summarize/{model}/{dataset}.log",
    shell:
        "python -m genzoo summarize --runs {input.runs} --out {output} > {log} 2>&1"
