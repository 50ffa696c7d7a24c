"""The dataset card's pictures: each column's distribution (real against synthetic),
correlation heatmaps, text lengths, a contact sheet of images and the sample rows'
thumbnails. Matplotlib and Pillow are imported inside each function."""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

from synthfactory.metrics.tabular.sdtypes import NUMERIC, as_float, kind, numeric_values

if TYPE_CHECKING:
    import pandas as pd

#: One colour per role on every chart of every card: the real (reference) rows and the
#: synthetic rows never swap colours, and an output that holds source rows too (written with
#: ``augment.combined``) has its own colour and name, never "synthetic".
COLOURS = {"real": "#1f77b4", "synthetic": "#ff7f0e", "output": "#2ca02c"}
LABELS = {
    "real": "real",
    "synthetic": "synthetic",
    "output": "output (source + synthetic rows)",
}
SAMPLE_IMAGES = "plots/sample/"
"""Where the sample rows' images go (linked from the card's sample tables, not listed under
Plots)."""
THUMBNAIL = 64
"""Edge, in pixels, of a card thumbnail: smaller images are enlarged to it (nearest
neighbour, so a 16x16 digit stays crisp), larger ones shrunk."""
HEATMAP_COLUMNS = 12
NULL = "(null)"

log = logging.getLogger(__name__)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _short(name: object, limit: int) -> str:
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plot_kind(synthetic: pd.Series, real: pd.Series | None) -> str | None:
    """How a column is plotted: by its synthetic values, or by the real ones when every
    synthetic value is null (a column the synthesizer suppressed is still shown)."""
    for series in (synthetic, real):
        if series is not None and series.notna().any():
            return kind(series)
    return kind(synthetic)


def _null_note(series: list[tuple[str, pd.Series]]) -> str:
    shares = [(role, float(s.isna().mean()) if len(s) else 0.0) for role, s in series]
    if not any(share for _, share in shares):
        return ""
    return "nulls: " + ", ".join(
        f"{LABELS[role].split(' ')[0]} {share:.0%}" for role, share in shares
    )


def _category_shares(series: pd.Series) -> pd.Series:
    """Each value's share of the rows, nulls as their own category."""
    values = series.astype(object).where(series.notna(), NULL).map(str)
    return values.value_counts(normalize=True)


def column_figure(name: str, series: list[tuple[str, pd.Series]], how: str) -> Any:
    """One column's distribution per role (``series``: (role, values), real first):
    histograms for numbers and datetimes, bars of value shares (nulls included) for
    categories. An all-null column is drawn as such, never an error."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    if how == NUMERIC:
        values = {role: numeric_values(s).to_numpy() for role, s in series}
        pooled = np.concatenate(list(values.values())) if values else np.zeros(0)
        bins: Any = np.histogram_bin_edges(pooled, bins=30) if len(pooled) else 10
        for role, v in values.items():
            if len(v):
                ax.hist(
                    v, bins=bins, density=True, alpha=0.5, color=COLOURS[role], label=LABELS[role]
                )
            else:  # a legend entry that says so
                ax.bar([], [], color=COLOURS[role], label=f"{LABELS[role]}: no values")
        ax.set_ylabel("density", fontsize=8)
    else:
        import pandas as pd

        shares = {role: _category_shares(s) for role, s in series}
        top = pd.concat(list(shares.values()), axis=1).max(axis=1)
        order = list(top.sort_values(ascending=False, kind="stable").index[:15])
        x = np.arange(len(order))
        width = 0.8 / max(len(shares), 1)
        for k, (role, share) in enumerate(shares.items()):
            heights = share.reindex(order).fillna(0.0).to_numpy(dtype=float)
            offset = (k - (len(shares) - 1) / 2) * width
            ax.bar(x + offset, heights, width, color=COLOURS[role], label=LABELS[role])
        ax.set_xticks(x, [_short(v, 18) for v in order], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("share of rows", fontsize=8)
    note = _null_note(series)
    ax.set_title(_short(name, 48) + (f"\n{note}" if note else ""), fontsize=9)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=7)
    return fig


def correlation_figure(frames: list[tuple[str, pd.DataFrame]], numeric: list[str]) -> Any:
    """Correlation heatmaps of the numeric columns, one per role, side by side (real first),
    sized to the column count so no two labels touch: at most ``HEATMAP_COLUMNS`` columns,
    names cut to 16 characters, row labels on the first heatmap only."""
    plt = _pyplot()
    numeric = numeric[:HEATMAP_COLUMNS]
    n = len(numeric)
    names = [_short(c, 16) for c in numeric]
    side = min(max(3.0, 0.34 * n + 1.0), 8.0)
    fig, axes = plt.subplots(
        1,
        len(frames),
        figsize=(side * len(frames) + 1.5, side + 0.8),
        squeeze=False,
        layout="constrained",
    )
    image = None
    for k, (ax, (role, df)) in enumerate(zip(axes[0], frames, strict=True)):
        corr = df[numeric].apply(as_float).corr().to_numpy(dtype=float)
        image = ax.imshow(corr, vmin=-1, vmax=1, cmap="coolwarm")
        ax.set_xticks(range(n), names, rotation=90, fontsize=7)
        ax.set_yticks(range(n), names if k == 0 else [], fontsize=7)
        ax.set_title(f"{LABELS[role]} correlations", fontsize=9, color=COLOURS[role])
    fig.colorbar(image, ax=list(axes[0]), shrink=0.8)
    return fig


def plots(
    real: pd.DataFrame | None,
    synthetic: pd.DataFrame,
    max_columns: int = 12,
    prefix: str = "plots/",
) -> dict[str, bytes]:
    """PNG plots: per column the real and synthetic distributions, and correlation heatmaps.
    A dataset that holds source rows too (an ``is_synthetic`` column, ``augment.combined``)
    is drawn as the output it is. A plot that fails is left out (and logged): the card is
    never lost to a plot."""
    from synthfactory.metrics.tabular.sharded import SYNTHETIC_FLAG

    role = "output" if SYNTHETIC_FLAG in synthetic.columns else "synthetic"
    out: dict[str, bytes] = {}

    def real_column(c: Any) -> pd.Series | None:
        return real[c] if real is not None and c in real.columns else None

    kinds = {
        c: _plot_kind(synthetic[c], real_column(c))
        for c in synthetic.columns
        if c != SYNTHETIC_FLAG
    }
    columns = [c for c, k in kinds.items() if k is not None][:max_columns]
    for c in columns:
        r = real_column(c)
        series = ([("real", r)] if r is not None else []) + [(role, synthetic[c])]
        name = f"{prefix}column_{_slug(c)}.png"
        try:
            out[name] = _png(column_figure(str(c), series, str(kinds[c])))
        except Exception:  # one plot never costs the card
            log.warning("card: no plot of column %r", c, exc_info=True)
    numeric = [c for c in columns if kinds[c] == NUMERIC and (real is None or c in real.columns)]
    if len(numeric) >= 2:
        frames = ([("real", real)] if real is not None else []) + [(role, synthetic)]
        try:
            out[f"{prefix}correlation.png"] = _png(correlation_figure(frames, numeric))
        except Exception:
            log.warning("card: no correlation plot", exc_info=True)
    return out


def text_plots(texts: list[str]) -> dict[str, bytes]:
    """A histogram of text lengths (words)."""
    from synthfactory.metrics.text.measures import WORD

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist([len(WORD.findall(t)) for t in texts], bins=30, color=COLOURS["synthetic"])
    ax.set_xlabel("words per text")
    ax.set_ylabel("texts")
    ax.set_title(f"text lengths ({len(texts):,} texts)")
    return {"plots/text_lengths.png": _png(fig)}


def fit_thumbnail(image: Any, size: int = THUMBNAIL) -> Any:
    """``image`` (PIL) within size x size: a smaller one enlarged by the largest whole factor
    that fits (nearest neighbour: pixels stay sharp), a larger one shrunk."""
    from PIL import Image

    width, height = image.size
    if max(width, height) < size:
        factor = size // max(width, height, 1)
        if factor > 1:
            image = image.resize((width * factor, height * factor), Image.Resampling.NEAREST)
    if max(image.size) > size:
        image = image.copy()
        image.thumbnail((size, size))
    return image


def thumbnails(images: list[bytes], size: int = THUMBNAIL, columns: int = 8) -> dict[str, bytes]:
    """Sample images as one contact sheet, each centred in a size x size cell."""
    from PIL import Image

    if not images:
        return {}
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * size, rows * size), "white")
    for i, data in enumerate(images):
        try:
            image = fit_thumbnail(Image.open(io.BytesIO(data)).convert("RGB"), size)
        except Exception:  # an unreadable image leaves its cell blank
            continue
        x = (i % columns) * size + (size - image.size[0]) // 2
        y = (i // columns) * size + (size - image.size[1]) // 2
        sheet.paste(image, (x, y))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return {"plots/thumbnails.png": buf.getvalue()}


def is_image(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("bytes"), bytes | bytearray)


def sample_image_name(row: int, column: object, table: str | None = None) -> str:
    where = f"{_slug(table)}_" if table else ""
    return f"{SAMPLE_IMAGES}{where}row{row + 1}_{_slug(column)}.png"


def sample_images(
    sample: pd.DataFrame, table: str | None = None, size: int = THUMBNAIL
) -> dict[str, bytes]:
    """A PNG thumbnail of every image in the sample rows (``sample_image_name``), which the
    card's sample table shows in place of the image."""
    from PIL import Image

    out: dict[str, bytes] = {}
    for row, values in enumerate(sample.itertuples(index=False)):
        for column, value in zip(sample.columns, values, strict=True):
            if not is_image(value):
                continue
            assert isinstance(value, dict)
            try:
                image = fit_thumbnail(Image.open(io.BytesIO(value["bytes"])).convert("RGB"), size)
            except Exception:  # an unreadable image stays "(image)"
                continue
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            out[sample_image_name(row, column, table)] = buf.getvalue()
    return out


def _slug(name: object) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(name))[:60]
