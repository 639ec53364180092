# genzoo: datasets (MNIST and others) -> a zoo of generative models -> scores, samples and one
# HTML report.
#
#   snakemake --cores all reports/all.html          # laptop
#   snakemake --profile slurm reports/all.html      # SLURM cluster (see README)
#   snakemake --cores all nade                      # one model: all its runs, summary, samples
#
# This file is the table of contents; helpers live in workflow/rules/common.smk, and every rule
# calls the one CLI, `python -m genzoo <command>`, with explicit input and output paths and its
# job's settings file (settings/..., written when this file is read; see src/genzoo/settings.py).

# params.yaml (and any --configfile, merged over it) is read and validated by common.smk.
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "reports/all.html",


# One target per trained model, named after it: every run (each dataset it runs on, each seed)
# trained (and its phases run), scored and sampled, and the summary of each dataset's runs (the
# DVC stage model@<name> asks for this).
for _model in TRAINED:

    rule:
        name: _model
        localrule: True
        input:
            summaries_of([_model]),
            runs_of("reports/figures/{model}/{dataset}/seed{seed}", [_model] if _model in MODELS else []),
