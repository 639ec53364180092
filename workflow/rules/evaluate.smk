# evaluate_<model>: one job per run (model, seed). The model scores itself (exact NLL, a bound,
# label agreement with the judge, or the judge's own accuracy) with the evaluate knobs its
# settings file holds, and every generative model's samples get FID, precision and recall on the
# judge's features; the seconds that took go to the run's timings, not its metrics.
# summarize_<model> then gathers a model's runs: mean and std over the seeds.


rule evaluate:
    input:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.json",
        phases=phase_files,
        timings=timings_files,
        judge=judge_input,
        test="data/processed/test.npz",
        settings=f"{SETTINGS}/evaluate.json",
    output:
        metrics="reports/metrics/{model}/seed{seed}.json",
        timings=f"{TIMINGS}/evaluate.json",
    params:
        run_dir=lambda wildcards, input: Path(input.model).parent,
        judge=lambda wildcards, input: f"--judge {input.judge}" if input.judge else "",
    conda:
        ENV
    log:
        "logs/evaluate/{model}/seed{seed}.log",
    threads: job_threads
    shell:
        "python -m genzoo --threads {threads} evaluate --settings {input.settings} "
        "--run-dir {params.run_dir} --test {input.test} {params.judge} "
        "--timings {input.timings} --timings-out {output.timings} --out {output.metrics} > {log} 2>&1"


localrules:
    summarize,


rule summarize:
    input:
        runs=lambda wildcards: runs_of("reports/metrics/{model}/seed{seed}.json", [wildcards.model]),
        settings="settings/{model}/summarize.json",
    output:
        "reports/metrics/{model}.json",
    conda:
        ENV
    log:
        "logs/summarize/{model}.log",
    shell:
        "python -m genzoo summarize --runs {input.runs} --out {output} > {log} 2>&1"
