# train_<model>: one trainer for every model, one job per (dataset, seed); best checkpoint by validation NLL.
# Then the model's own phases, if it declares any (the VQ-VAE: codes, then the prior fitted on
# them): one rule per phase name, each job reading its settings file, so editing the section a
# phase reads reruns that phase and what follows, never the training.


rule train:
    input:
        train=f"{PROCESSED}/train.npz",
        val=f"{PROCESSED}/val.npz",
        settings=f"{SETTINGS}/train.json",
    output:
        model=f"{RUN}/model.pt",
        history=f"{RUN}/history.json",
        timings=f"{TIMINGS}/train.json",
    params:
        out_dir=lambda wildcards, output: Path(output.model).parent,
    conda:
        ENV
    log:
        "logs/train/{model}/{dataset}/seed{seed}.log",
    threads: job_threads
    priority: train_priority
    shell:
        "python -m genzoo --threads {threads} train --settings {input.settings} "
        "--data-dir data/processed/{wildcards.dataset} --out-dir {params.out_dir} "
        "--timings {output.timings} > {log} 2>&1"


for _name, (_phase, _models) in declared_phases().items():

    rule:
        name:
            _name
        input:
            model=f"{RUN}/model.pt",
            previous=previous_phase_files(_name),
            data=expand("data/processed/{{dataset}}/{split}.npz", split=SPLITS),
            settings=f"{SETTINGS}/{_name}.json",
        output:
            files=phase_outputs(_phase),
            timings=phase_timings(_phase),
        wildcard_constraints:
            model="|".join(_models),
        params:
            run_dir=lambda wildcards, input: Path(input.model).parent,
            timings=lambda wildcards, output: f"--timings {output.timings}" if output.timings else "",
        conda:
            ENV
        log:
            f"logs/{_name}/{{model}}/{{dataset}}/seed{{seed}}.log",
        threads: job_threads
        shell:
            "python -m genzoo --threads {threads} phase --settings {input.settings} "
            "--run-dir {params.run_dir} --data-dir data/processed/{wildcards.dataset} {params.timings} "
            "> {log} 2>&1"
