"""Figure 4 (left): validation images with their five most probable labels as probability bars."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .draw import BLACK, GREY, WHITE, font, stack

TRUE_COLOUR, OTHER_COLOUR = (214, 39, 40), (31, 119, 180)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def prediction_panel(picture: np.ndarray, true_name: str, top: Sequence[tuple[str, float]],
                     true_index_in_top: int | None, width: int = 220, picture_side: int = 128) -> Image.Image:
    """One image, its true label under it, and bars for the five most probable labels; the bar of the
    true label (when it is among the five) drawn in red, as in the paper's figure."""
    panel = Image.new("RGB", (width, picture_side + 30 + 18 * len(top) + 6), WHITE)
    shown = Image.fromarray(picture).resize((picture_side, picture_side), Image.BILINEAR)
    panel.paste(shown, ((width - picture_side) // 2, 4))
    draw = ImageDraw.Draw(panel)
    draw.text((width / 2, picture_side + 8), _shorten(true_name, 30), fill=BLACK, font=font(13), anchor="ma")
    small = font(11)
    bar_end = width - 44  # the probability stands right of the bar, apart from the label ("5" and "9%", not "5 9%")
    for i, (name, p) in enumerate(top):
        y = picture_side + 28 + 18 * i
        colour = TRUE_COLOUR if i == true_index_in_top else OTHER_COLOUR
        draw.rectangle([4, y, bar_end, y + 14], outline=GREY)
        length = (bar_end - 4) * max(0.0, min(1.0, p))
        draw.rectangle([4, y, 4 + max(length, 3.0 if p > 0 else 0.0), y + 14], fill=colour)  # a small p still shows
        on_bar = p >= 0.5  # white on a long bar; otherwise black, haloed in white where it crosses a short bar
        draw.text((8, y + 7), _shorten(name, 24), fill=WHITE if on_bar else BLACK, font=small, anchor="lm",
                  stroke_width=0 if on_bar else 2, stroke_fill=WHITE)
        draw.text((width - 4, y + 7), f"{p:.0%}", fill=BLACK, font=small, anchor="rm")
    return panel


def predictions_figure(pictures: Sequence[np.ndarray], true_names: Sequence[str],
                       tops: Sequence[Sequence[tuple[str, float]]], true_ranks: Sequence[int | None],
                       per_row: int = 4) -> Image.Image:
    panels = [prediction_panel(p, t, top, r) for p, t, top, r in zip(pictures, true_names, tops, true_ranks)]
    rows = [stack(panels[i:i + per_row], vertical=False, gap=8) for i in range(0, len(panels), per_row)]
    body = stack(rows, gap=8)
    lead = "under each image its true label; bars: the five most probable labels (ten patches), "
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    x = 4 + measure.textlength(lead, font=font(11))
    key = Image.new("RGB", (max(body.width, int(x + 14 + measure.textlength("the true label", font=font(11)) + 8)), 22),
                    WHITE)
    draw = ImageDraw.Draw(key)
    draw.text((4, 4), lead, fill=BLACK, font=font(11))
    draw.rectangle([x, 6, x + 10, 16], fill=TRUE_COLOUR)
    draw.text((x + 14, 4), "the true label", fill=BLACK, font=font(11))
    return stack([key, body], gap=2)
