# report: reports/all.html from every model's summary, every run's curves, and the figures.


localrules:
    report,


rule report:
    input:
        metrics=expand("reports/metrics/{model}.json", model=TRAINED),
        history=runs_of(f"{RUN}/history.json", TRAINED),
        figures=runs_of("reports/figures/{model}/seed{seed}", MODELS),
        settings="settings/report.json",
    output:
        "reports/all.html",
    conda:
        ENV
    log:
        "logs/report.log",
    shell:
        "python -m genzoo report --metrics {input.metrics} --history {input.history} "
        "--figures {input.figures} --settings {input.settings} --out {output} > {log} 2>&1"
