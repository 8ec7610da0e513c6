"""`alexnet report RUN --out report.html`: one self-contained page about a run.

The run's configuration, its learning curves, its error rates (centre patch and ten patches) beside
the paper's, the figures of `alexnet figures`, and any experiment tables given with --include
(ablation.md, relu_tanh.md, retrieval.md). Pictures are embedded as data: URIs, so the page is one
file that can be mailed or archived. On load, the page counts its images that decoded and writes the
count into `<body data-images-loaded="n/m">` (the browser test reads it).
"""

from __future__ import annotations

import base64
import html
import re
import tempfile
from pathlib import Path
from typing import Any

from ..errors import AlexNetError
from ..evaluation.evaluate import evaluate_checkpoint
from ..files import refuse_to_replace_foreign, write_text
from ..runs.checkpoint import load_checkpoint
from .make import make_figures

# FIDELITY.md: the paper's single-network results, ten patches unless said.
PAPER_ROWS = [
    ("ILSVRC-2010 test, 1 CNN, 10 patches", 0.375, 0.170),
    ("ILSVRC-2010 test, 1 CNN, centre patch (footnote 5)", 0.390, 0.183),
    ("ILSVRC-2012 val, 1 CNN", 0.407, 0.182),
    ("ILSVRC-2012 val, 5 CNNs averaged", 0.381, 0.164),
]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1000px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
code, pre { background: #f6f6f6; }
pre { padding: 0.5em; overflow-x: auto; }
"""

COUNT_IMAGES = """
window.addEventListener('load', function () {
  var all = document.images, ok = 0;
  for (var i = 0; i < all.length; i++) { if (all[i].complete && all[i].naturalWidth > 0) ok++; }
  document.body.setAttribute('data-images-loaded', ok + '/' + all.length);
});
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[Any], rows: list[list[Any]], cell=_esc) -> str:
    """An HTML table; `cell` turns each value into safe HTML (escaped text by default)."""
    head = "".join(f"<th>{cell(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _inline(text: str) -> str:
    """Escaped text with the inline markdown our tables use: `code` and **bold** (escaped first, so a
    file's own tags stay text)."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", _esc(text))
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)


def _md_table(lines: list[str]) -> str:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in lines if not set(line.replace("|", "").strip()) <= set("-: ")]
    return _table(rows[0], rows[1:], cell=_inline) if rows else ""


def markdown_to_html(text: str) -> str:
    """The subset our result files use: '#' headings (one level down: a file's '#' is the page's h2), pipe
    tables, paragraphs, `code` and **bold**; everything else escaped."""
    out, table, paragraph = [], [], []

    def flush() -> None:
        if table:
            out.append(_md_table(table))
            table.clear()
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if paragraph:
                flush()
            table.append(line)
        elif line.startswith("#"):
            flush()
            level = min(6, len(line) - len(line.lstrip("#")) + 1)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif not line.strip():
            flush()
        else:
            if table:
                flush()
            paragraph.append(line.strip())
    flush()
    return "\n".join(out)


def _included(path: Path) -> list[str]:
    """An experiment's table as a section: its own heading (or its file name when it has none), then any
    chart it names (`relu_tanh.png`, `ablation.png`) that lies beside it, embedded."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise AlexNetError(f"--include {path}: not a text file (UTF-8); give an experiment's .md table") from None
    sections = [] if text.lstrip().startswith("#") else [f"<h2>{_esc(path.name)}</h2>"]
    sections.append(markdown_to_html(text))
    for name in dict.fromkeys(re.findall(r"`([\w.-]+\.png)`", text)):
        if (path.parent / name).is_file():
            sections.append(_png(path.parent / name, name))
    return sections


def _value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) if value else "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _settings_table(settings: dict[str, Any]) -> str:
    return _table(["setting", "value"], [[key, _value(v)] for key, v in settings.items()])


def _configuration(ckpt: dict[str, Any]) -> list[str]:
    """The run's settings as tables: the run, the recipe, the network (one row per conv layer)."""
    run = {k: ckpt.get(k) for k in ("preset", "seed", "epoch", "ablations", "data", "data_size", "world_size",
                                    "init_from") if ckpt.get(k) not in (None, [], ())}
    model = dict(ckpt.get("model_config") or {})
    convs = model.pop("convs", ())
    sections = ["<h2>Configuration</h2>", "<h3>Run</h3>", _settings_table(run)]
    if ckpt.get("recipe"):
        sections += ["<h3>Recipe</h3>", _settings_table(ckpt["recipe"])]
    if ckpt.get("speed"):
        sections += ["<h3>Speed settings</h3>", _settings_table(ckpt["speed"])]
    if convs:
        fields = [k for k in convs[0] if k != "ops"]
        sections += ["<h3>Network: convolutional layers</h3>",
                     _table(["layer"] + fields + ["then"],
                            [[f"conv{i}"] + [_value(c.get(k)) for k in fields] + [" → ".join(c.get("ops", ())[1:])]
                             for i, c in enumerate(convs, 1)])]
    sections += ["<h3>Network: the rest</h3>", _settings_table(model)]
    return sections


def _figure_sections(figures: dict[str, Any]) -> list[str]:
    files = figures["files"]
    sections = ["<h2>Learning curves</h2>", _png(files["curves"], "learning curves")] if "curves" in files else []
    spec = ", ".join(f"column {i + 1}: {v:.2f} (at initialisation {v0:.2f})" for i, (v, v0) in
                     enumerate(zip(figures["colour_specificity"], figures["initial_colour_specificity"])))
    return sections + [
        "<h2>Figure 3: conv1 kernels</h2>", f"<p>Colour specificity: {spec}; 0 = the same in R, G and B. Random "
        "kernels already score about 2/3, so only the change from initialisation says something.</p>",
        _png(files["kernels"], "conv1 kernels"),
        "<h2>Figure 4: predictions and nearest neighbours</h2>",
        "<p>Top-5 labels of validation images (ten patches); red marks the true label.</p>",
        _png(files["predictions"], "top-5 predictions"),
        f"<p>Each row: a validation image, then the training images nearest in the last hidden layer "
        f"({figures['neighbors_same_class']:.0%} share its class).</p>",
        _png(files["neighbors"], "nearest neighbours")]


def _error_sections(results: dict[str, dict[str, Any]], classes: int) -> list[str]:
    rows = [[f"this run, {'ten patches' if tta == '10crop' else 'centre patch'}",
             f"{r['top1_error']:.1%}", f"{r['top5_error']:.1%}"] for tta, r in results.items()]
    rows.append([f"chance on this dataset ({classes} classes, guessing uniformly)", f"{1 - 1 / classes:.1%}",
                 f"{max(0.0, 1 - 5 / classes):.1%}"])
    rows += [[f"the paper: {name}", f"{t1:.1%}", f"{t5:.1%}"] for name, t1, t5 in PAPER_ROWS]
    return ["<h2>Error rates beside the paper's</h2>", _table(["network", "top-1 error", "top-5 error"], rows),
            "<p>The paper's figures are for ImageNet (1000 classes); on another dataset the rows "
            "are not comparable, only the gap between centre and ten patches is.</p>"]


GENERATOR = '<meta name="generator" content="alexnet report">'   # how a page of ours is told from others


def write_report(run: str, out: str | Path, data: str | None = None, device: str | None = None,
                 include: list[str] | None = None, figures_dir: str | None = None, progress: bool = False,
                 log=print, force: bool = False) -> Path:
    """Write the page to `out`, replacing only a report of ours there (or, with `force`, any file)."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise AlexNetError(f"{out}: the report is an HTML file; give a name ending in .html")
    if not force:
        refuse_to_replace_foreign(out, GENERATOR.encode(), "a report")
    for extra in include or []:
        if not Path(extra).is_file():
            raise AlexNetError(f"{extra}: no such file to include")
    included = [section for extra in include or [] for section in _included(Path(extra))]  # before any work
    ckpt = load_checkpoint(run)
    with tempfile.TemporaryDirectory(prefix="alexnet-report-") as tmp:
        log("report: 1/3 drawing the figures (Figure 3, Figure 4, learning curves)")
        figures = make_figures(run, figures_dir or tmp, data=data, device=device, progress=progress,
                               log=lambda line: None, force=force)
        results = {}
        for step, tta in enumerate(("center", "10crop"), 2):
            log(f"report: {step}/3 evaluating with the {'centre patch' if tta == 'center' else 'ten patches'}")
            results[tta] = evaluate_checkpoint(run, data=data, tta=tta, device=device, progress=progress)
        sections = [f"<h1>AlexNet run: {_esc(Path(run).resolve().name)}</h1>",
                    f"<p>Checkpoint <code>{_esc(ckpt['path'])}</code>, preset <code>{_esc(ckpt.get('preset'))}</code>, "
                    f"epoch {_esc(ckpt.get('epoch'))}, dataset <code>{_esc(results['center']['data'])}</code> "
                    f"({results['center']['images']} validation images).</p>"]
        sections += _error_sections(results, len(ckpt["classes"])) + _figure_sections(figures)
        sections += included
        sections += _configuration(ckpt)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR}"
            f"<title>AlexNet run {_esc(Path(run).name)}</title><style>{STYLE}</style>"
            f"<script>{COUNT_IMAGES}</script></head>\n<body>\n" + "\n".join(sections) + "\n</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, page, what="report")
    log(f"report: {out} ({len(page) / 1e6:.1f} MB, {page.count('<img ')} images embedded)")
    return out
