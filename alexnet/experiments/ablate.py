"""`alexnet ablate`: train the full network and each chosen ablation with one recipe, compare.

Writes `OUT/ablation.md`: top-1 / top-5 error (ten patches) of each variant, its difference from the
full network, and the difference the paper reports beside it. Runs live in `OUT/<variant>/`; an
interrupted ablation continues (finished runs are only evaluated again).
"""

from __future__ import annotations

from pathlib import Path

from ..ablations import ABLATIONS
from ..errors import AlexNetError
from ..files import write_text
from ..evaluation.evaluate import evaluate_checkpoint
from ..runs.checkpoint import LAST
from ..training.trainer import TrainSettings, train


def run_ablation(data: str | Path, out: str | Path, preset: str, variants: list[str], epochs: int | None = None,
                 seed: int = 0, device: str | None = None, progress: bool = True, log=print) -> Path:
    out = Path(out)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise AlexNetError(f"unknown ablation(s) {', '.join(unknown)}; known: {', '.join(ABLATIONS)}")
    if not variants:
        raise AlexNetError("no ablation chosen; give --variants NAME ... or --variants all")
    rows = []
    for name in ["full"] + variants:
        run = out / name
        log(f"--- {name}: {'the full preset' if name == 'full' else ABLATIONS[name].description} -> {run}")
        train(TrainSettings(data=Path(data), out=run, preset=preset, epochs=epochs, seed=seed, device=device,
                            resume=(run / LAST).exists(), progress=progress, log=log,
                            ablations=() if name == "full" else (name,)))
        result = evaluate_checkpoint(str(run), tta="10crop", device=device)
        rows.append((name, result))
    full = rows[0][1]
    lines = [f"# Ablations of `{preset}` on {Path(data)}", "",
             f"Ten-patch error on {full['images']} validation images; every variant trained with the same recipe"
             f"{f' for {epochs} epochs' if epochs else ''} and seed {seed}. A positive difference means the "
             "ingredient helps (removing it raised the error).", "",
             "| variant | removed | top-1 | top-5 | top-1 vs full | top-5 vs full | the paper |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in rows:
        if name == "full":
            lines.append(f"| full | nothing | {r['top1_error']:.2%} | {r['top5_error']:.2%} | | | |")
            continue
        a = ABLATIONS[name]
        lines.append(f"| {name} | {a.description} | {r['top1_error']:.2%} | {r['top5_error']:.2%} | "
                     f"{(r['top1_error'] - full['top1_error']) * 100:+.1f} pts | "
                     f"{(r['top5_error'] - full['top5_error']) * 100:+.1f} pts | {a.paper} |")
    table = out / "ablation.md"
    write_text(table, "\n".join(lines) + "\n", what="table")
    log("\n".join(lines))
    return table
