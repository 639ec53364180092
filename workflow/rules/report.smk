# report: reports/all.html from every model's summary, every run's curves, and the figures.


localrules:
    report,


rule report:
    input:
        metrics=expand("reports/metrics/{model}.json", model=TRAINED),
        history=runs_of("data/models/{model}/seed{seed}/history.json", TRAINED),
        figures=runs_of("reports/figures/{model}/seed{seed}", MODELS),
        code=sources("report", extra=["src/genzoo/templates/report.html.j2"]),
    output:
        "reports/all.html",
    params:
        title=config["report"]["title"],
    conda:
        ENV
    log:
        "logs/report.log",
    shell:
        "python -m genzoo report --metrics {input.metrics} --history {input.history} "
        "--figures {input.figures} --title {params.title:q} --out {output} > {log} 2>&1"
