# report: reports/all.html from every model's summary, every run's curves, the figures, and the
# seconds per FID sample (timings: never in the metrics, which must not change on a rerun).


localrules:
    report,


rule report:
    input:
        metrics=summaries_of(TRAINED),
        history=runs_of(f"{RUN}/history.json", TRAINED),
        figures=runs_of("reports/figures/{model}/{dataset}/seed{seed}", MODELS),
        timings=runs_of(f"{TIMINGS}/evaluate.json", MODELS),
        settings="settings/report.json",
    output:
        "reports/all.html",
    conda:
        ENV
    log:
        "logs/report.log",
    shell:
        "python -m genzoo report --metrics {input.metrics} --history {input.history} "
        "--figures {input.figures} --timings {input.timings} --settings {input.settings} --out {output} > {log} 2>&1"
