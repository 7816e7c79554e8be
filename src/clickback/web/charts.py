"""Charts as SVG drawn on the server by pygal (ADR 19): no script, nothing the browser fetches.

pygal escapes every label and value it writes. Its SVG carries a <style> (the series' colours)
and a <script> (settings for its optional tooltip script, which we never load): the style gets
the page's CSP nonce, the script and the tooltip's style attribute are left out."""

import functools
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from markupsafe import Markup

if TYPE_CHECKING:
    from pygal.style import Style


@functools.cache
def _style() -> "Style":
    """Every chart of the dashboard looks alike (colours as the style sheet's accents). pygal is
    imported with the first chart: a worker that only answers clicks, postbacks and the API
    keeps its 2 MB (issue 13: no worker above 150 MB while answering a report)."""
    from pygal.style import Style

    return Style(**_STYLE_OPTIONS)


_STYLE_OPTIONS: dict[str, object] = {
    "background": "transparent",
    "plot_background": "#ffffff",
    "foreground": "#1f2933",
    "foreground_strong": "#1f2933",
    "foreground_subtle": "#7b8794",
    "colors": ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2"),
    "font_family": "system-ui, sans-serif",
    "label_font_size": 12,
    "major_label_font_size": 12,
    "legend_font_size": 13,
    "title_font_size": 15,
}
# More x labels than this and only every n-th is written (a quarter's days stay readable).
MAX_X_LABELS = 12
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)
_STYLE = re.compile(r"<style\b")
# Its tooltip's inline style attribute (no nonce can allow one): the style sheet hides the tooltip.
_STYLE_ATTRIBUTE = re.compile(r' style="[^"]*"')


def chart(
    kind: str,
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    nonce: str,
    *,
    integers: bool = False,
) -> Markup:
    """A line or bar chart (`kind`) of `series` (name -> one value per label)."""
    import pygal

    make = pygal.Bar if kind == "bar" else pygal.Line
    every = max(1, -(-len(labels) // MAX_X_LABELS))
    drawn = make(
        style=_style(),
        title=title,
        width=640,
        height=300,
        disable_xml_declaration=True,
        js=(),
        show_legend=len(series) > 1,
        legend_at_bottom=True,
        x_label_rotation=30 if len(labels) > 7 else 0,
        x_labels_major_every=every,
        show_minor_x_labels=every == 1,
        print_values=False,
        include_x_axis=True,
        classes=["pygal-chart", "chart"],
        no_data_text="No data",
    )
    drawn.x_labels = list(labels)
    highest = max((v for values in series.values() for v in values if v is not None), default=0.0)
    if integers and highest < MAX_X_LABELS:
        # Counts in whole numbers: no axis of 0.2 registrations.
        drawn.y_labels = list(range(int(highest) + 2))
    for name, values in series.items():
        drawn.add(name, list(values))
    svg = drawn.render(is_unicode=True)
    svg = _STYLE_ATTRIBUTE.sub("", _SCRIPT.sub("", svg))
    svg = _STYLE.sub(f'<style nonce="{nonce}"', svg, count=1)
    return Markup(svg)  # noqa: S704 - pygal's own SVG, every label and value escaped by it
