"""`alexnet ablate`: train the full network and each chosen ablation with one recipe, over one or more seeds.

Writes `OUT/ablation.md`: the ten-patch top-1 / top-5 error of each variant (mean, and with several
seeds the standard deviation and range), its difference from the full network, and the difference the
paper reports beside it; and `OUT/ablation.png` (with an SVG copy): every seed's top-1 error per
variant, so the noise can be seen next to the differences. Runs live in `OUT/<variant>/seed-<k>/`; an
interrupted ablation continues (finished runs are only evaluated again).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from ..ablations import ABLATIONS
from ..config import TrainConfig
from ..drawing.charts import save_chart, spread_chart
from ..drawing.draw import SOFTWARE
from ..errors import AlexNetError
from ..evaluation.evaluate import evaluate_checkpoint
from ..files import refuse_to_replace_foreign_outputs, write_text
from ..runs.checkpoint import LAST
from ..training.loop import train


def _train_and_evaluate(data: Path, run: Path, preset: str, variant: str, epochs: int | None, seed: int,
                        device: str | None, progress: bool, log) -> dict:
    train(TrainConfig(data=data, out=run, preset=preset, epochs=epochs, seed=seed, device=device,
                        resume=(run / LAST).exists(), progress=progress, log=log,
                        ablations=() if variant == "full" else (variant,)))
    return evaluate_checkpoint(str(run), tta="10crop", device=device)


def _summary(values: list[float]) -> str:
    """'31.2%' for one seed; '31.2% ± 1.1 (29.0-32.5)' for several: mean, sample standard deviation, range."""
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.2%}"
    return (f"{mean:.2%} ± {statistics.stdev(values) * 100:.1f} "
            f"({min(values) * 100:.1f}-{max(values) * 100:.1f})")


TITLE = "# Ablations of "  # ablation.md's first words: how a table of ours is told from a user's file
OUTPUTS = {"ablation.md": (TITLE, "a table"), "ablation.png": (SOFTWARE, "a chart"),
           "ablation.svg": (SOFTWARE, "a chart")}


def ablation_table(preset: str, data: Path, results: dict[str, list[dict]], epochs: int | None,
                   seeds: list[int]) -> list[str]:
    """The markdown lines of ablation.md from each variant's per-seed evaluations ('full' first)."""
    def errors(name: str, key: str) -> list[float]:
        return [r[key] for r in results[name]]

    full_top1, full_top5 = errors("full", "top1_error"), errors("full", "top5_error")
    several = len(seeds) > 1
    noise = (f"Over {len(seeds)} seeds ({', '.join(map(str, seeds))}) each cell is mean ± standard deviation "
             f"(range) in points; the full network's top-1 varies by {statistics.stdev(full_top1) * 100:.1f} points "
             "from seed to seed, and a difference much smaller than that is not distinguishable from noise."
             if several else
             f"One seed ({seeds[0]}): the table cannot show its own noise; `--seeds 3` trains every variant "
             "three times and shows the spread.")
    lines = [f"{TITLE}`{preset}` on {data}", "",
             f"Ten-patch error on {results['full'][0]['images']} validation images; every variant trained with the "
             f"same recipe{f' for {epochs} epochs' if epochs else ''}. A positive difference means the ingredient "
             "helps (removing it raised the error). " + noise, "",
             "Chart: `ablation.png` (each seed's top-1 error per variant).", "",
             "| variant | removed | top-1 | top-5 | top-1 vs full | top-5 vs full | the paper |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in results:
        top1, top5 = errors(name, "top1_error"), errors(name, "top5_error")
        if name == "full":
            lines.append(f"| full | nothing | {_summary(top1)} | {_summary(top5)} | | | |")
            continue
        a = ABLATIONS[name]
        lines.append(f"| {name} | {a.description} | {_summary(top1)} | {_summary(top5)} | "
                     f"{(statistics.fmean(top1) - statistics.fmean(full_top1)) * 100:+.1f} pts | "
                     f"{(statistics.fmean(top5) - statistics.fmean(full_top5)) * 100:+.1f} pts | {a.paper} |")
    return lines


def run_ablation(data: str | Path, out: str | Path, preset: str, variants: list[str], epochs: int | None = None,
                 seeds: list[int] | tuple[int, ...] = (0,), device: str | None = None, progress: bool = True,
                 log=print, force: bool = False) -> Path:
    """Train and evaluate the preset and each ablation per seed under `out`, then write the table and chart.
    A table or chart of these names that is not ours is refused before any training (replaced with `force`)."""
    out, data, seeds = Path(out), Path(data), list(seeds)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise AlexNetError(f"unknown ablation(s) {', '.join(unknown)}; known: {', '.join(ABLATIONS)}")
    if not variants:
        raise AlexNetError("no ablation chosen; give --variants NAME ... or --variants all")
    if len(set(variants)) != len(variants):
        raise AlexNetError(f"--variants must be distinct, got {' '.join(variants)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise AlexNetError(f"seeds must be distinct and at least one, got {seeds}")
    if not force:
        refuse_to_replace_foreign_outputs(out, OUTPUTS)
    results: dict[str, list[dict]] = {}
    for name in ["full"] + variants:
        what = "the full preset" if name == "full" else ABLATIONS[name].description
        for i, seed in enumerate(seeds, 1):
            run = out / name / f"seed-{seed}"
            log(f"--- {name} ({what}), seed {seed} ({i} of {len(seeds)}) -> {run}")
            results.setdefault(name, []).append(
                _train_and_evaluate(data, run, preset, name, epochs, seed, device, progress, log))
    lines = ablation_table(preset, data, results, epochs, seeds)
    table = out / "ablation.md"
    write_text(table, "\n".join(lines) + "\n", what="table")
    full_mean = statistics.fmean(r["top1_error"] * 100 for r in results["full"])
    chart = spread_chart(list(results), [[r["top1_error"] * 100 for r in rs] for rs in results.values()],
                         f"Ablations of {preset}: ten-patch top-1 error, {len(seeds)} seed(s) each",
                         "top-1 error (%)", reference=(full_mean, "full network, mean"))
    save_chart(chart, out / "ablation.png")
    log("\n".join(lines))
    log(f"chart: {out / 'ablation.png'} (and ablation.svg)")
    return table
