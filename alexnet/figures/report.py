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
import json
import tempfile
from pathlib import Path
from typing import Any

from ..errors import AlexNetError
from ..evaluation.evaluate import evaluate_checkpoint
from ..files import write_text
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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def markdown_to_html(text: str) -> str:
    """The subset our result files use: '#' headings, pipe tables, paragraphs; everything escaped."""
    out, table, paragraph = [], [], []

    def flush() -> None:
        if table:
            rows = [[c.strip().replace("`", "").replace("**", "") for c in line.strip().strip("|").split("|")]
                    for line in table if not set(line.replace("|", "").strip()) <= set("-: ")]
            out.append(_table(rows[0], rows[1:]) if rows else "")
            table.clear()
        if paragraph:
            out.append(f"<p>{_esc(' '.join(paragraph)).replace('**', '')}</p>")
            paragraph.clear()

    for line in text.splitlines():
        if line.startswith("|"):
            if paragraph:
                flush()
            table.append(line)
        elif line.startswith("#"):
            flush()
            level = min(6, len(line) - len(line.lstrip("#")) + 1)
            out.append(f"<h{level}>{_esc(line.lstrip('#').strip())}</h{level}>")
        elif not line.strip():
            flush()
        else:
            if table:
                flush()
            paragraph.append(line.strip())
    flush()
    return "\n".join(out)


def write_report(run: str, out: str | Path, data: str | None = None, device: str | None = None,
                 include: list[str] | None = None, figures_dir: str | None = None, log=print) -> Path:
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise AlexNetError(f"{out}: the report is an HTML file; give a name ending in .html")
    for extra in include or []:
        if not Path(extra).is_file():
            raise AlexNetError(f"{extra}: no such file to include")
    with tempfile.TemporaryDirectory(prefix="alexnet-report-") as tmp:
        figures = make_figures(run, figures_dir or tmp, data=data, device=device, progress=False,
                               log=lambda line: None)
        results = {tta: evaluate_checkpoint(run, data=data, tta=tta, device=device) for tta in ("center", "10crop")}
        ckpt = load_checkpoint(run)
        files = figures["files"]
        sections = [f"<h1>AlexNet run: {_esc(Path(run).resolve().name)}</h1>",
                    f"<p>Checkpoint <code>{_esc(ckpt['path'])}</code>, preset <code>{_esc(ckpt.get('preset'))}</code>, "
                    f"epoch {_esc(ckpt.get('epoch'))}, dataset <code>{_esc(results['center']['data'])}</code> "
                    f"({results['center']['images']} validation images).</p>"]
        sections.append("<h2>Error rates beside the paper's</h2>")
        rows = [[f"this run, {'ten patches' if tta == '10crop' else 'centre patch'}",
                 f"{r['top1_error']:.1%}", f"{r['top5_error']:.1%}"] for tta, r in results.items()]
        rows += [[f"the paper: {name}", f"{t1:.1%}", f"{t5:.1%}"] for name, t1, t5 in PAPER_ROWS]
        sections.append(_table(["network", "top-1 error", "top-5 error"], rows))
        sections.append("<p>The paper's figures are for ImageNet (1000 classes); on another dataset the rows "
                        "are not comparable, only the gap between centre and ten patches is.</p>")
        if "curves" in files:
            sections += ["<h2>Learning curves</h2>", _png(files["curves"], "learning curves")]
        spec = ", ".join(f"column {i + 1}: {v:.2f}" for i, v in enumerate(figures["colour_specificity"]))
        sections += ["<h2>Figure 3: conv1 kernels</h2>", f"<p>Colour specificity ({spec}; 0 = the same in R, G and B).</p>",
                     _png(files["kernels"], "conv1 kernels"),
                     "<h2>Figure 4: predictions and nearest neighbours</h2>",
                     "<p>Top-5 labels of validation images (ten patches); red marks the true label.</p>",
                     _png(files["predictions"], "top-5 predictions"),
                     f"<p>Each row: a validation image, then the training images nearest in the last hidden layer "
                     f"({figures['neighbors_same_class']:.0%} share its class).</p>",
                     _png(files["neighbors"], "nearest neighbours")]
        for extra in include or []:
            sections += [f"<h2>{_esc(Path(extra).name)}</h2>", markdown_to_html(Path(extra).read_text())]
        config = {k: ckpt.get(k) for k in ("preset", "seed", "epoch", "recipe", "model_config", "speed", "world_size")
                  if k in ckpt}
        sections += ["<h2>Configuration</h2>", f"<pre>{_esc(json.dumps(config, indent=2, default=str))}</pre>"]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>AlexNet run {_esc(Path(run).name)}</title><style>{STYLE}</style>"
            f"<script>{COUNT_IMAGES}</script></head>\n<body>\n" + "\n".join(sections) + "\n</body></html>\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, page, what="report")
    log(f"report: {out} ({len(page) / 1e6:.1f} MB, {page.count('<img ')} images embedded)")
    return out
