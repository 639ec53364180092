# report: reports/all.html from every model's metrics, curves and figures.


localrules:
    report,


rule report:
    input:
        metrics=expand("reports/metrics/{model}.json", model=TRAINED),
        history=expand("data/models/{model}/history.json", model=TRAINED),
        figures=expand("reports/figures/{model}", model=MODELS),
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
