"""The flowchart of the Permenpan SOP table, laid out once for both printers.

Each step row has its symbol in its actor's column: a rounded terminator for the first and
last step, a rectangle for an activity, a diamond for a decision. Connectors run down from a
symbol, jog sideways just under the row's top edge to the next actor's column, and end in an
arrow on the next symbol; a TIDAK branch leaves the diamond sideways and runs along the
right margin of its target's column to the target's side. Everything is drawn per table cell
(in millimetres, the cell's own coordinates), so a row can move to the next page whole.
`svg()` and `png()` turn a cell's drawing into SVG (PDF) or a picture (DOCX).
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

from .model import ACTIVITY, DECISION, TERMINATOR, SopDocument

SYMBOL_H, DIAMOND_H, JOG_Y, ARROW = 8.0, 11.0, 2.5, 1.6


@dataclass
class CellDrawing:
    width: float
    height: float
    symbol: str | None = None            # kind of the symbol drawn here
    lines: list = field(default_factory=list)   # (points, arrow at end)
    labels: list = field(default_factory=list)  # (x, y, text)

    def box(self) -> tuple[float, float, float, float]:
        """The symbol's box (x, y, w, h)."""
        h = DIAMOND_H if self.symbol == DECISION else SYMBOL_H
        w = self.width * (0.5 if self.symbol == DECISION else 0.62)
        return (self.width - w) / 2, self.height / 2 + 1.0 - h / 2, w, h


def symbol_kind(doc: SopDocument, index: int) -> str:
    step = doc.steps[index]
    if step.decision:
        return DECISION
    return TERMINATOR if index in (0, len(doc.steps) - 1) else ACTIVITY


def lay_out(doc: SopDocument, col_w: float, row_h: list[float]) -> dict[tuple[int, int], CellDrawing]:
    """The drawing of every actor cell, keyed by (row, actor column)."""
    cells = {(r, c): CellDrawing(col_w, row_h[r]) for r in range(len(doc.steps)) for c in range(len(doc.actors))}
    col = [doc.actors.index(s.actor) if s.actor in doc.actors else None for s in doc.steps]
    for r, c in enumerate(col):
        if c is not None:
            cells[(r, c)].symbol = symbol_kind(doc, r)
    mid = col_w / 2
    for r in range(1, len(doc.steps)):
        a, b = col[r - 1], col[r]
        if a is None or b is None:
            continue
        above = cells[(r - 1, a)]
        x, y, w, h = above.box()
        above.lines.append(([(mid, y + h), (mid, above.height)], False))
        if doc.steps[r - 1].decision:
            above.labels.append((mid + 1.2, y + h + 3.2, "YA"))
        tx, ty, tw, th = cells[(r, b)].box()
        if a == b:
            cells[(r, b)].lines.append(([(mid, 0), (mid, ty)], True))
            continue
        step = 1 if b > a else -1
        cells[(r, a)].lines.append(([(mid, 0), (mid, JOG_Y), (col_w if step > 0 else 0, JOG_Y)], False))
        for c in range(a + step, b, step):
            cells[(r, c)].lines.append(([(0, JOG_Y), (col_w, JOG_Y)], False))
        cells[(r, b)].lines.append(([(0 if step > 0 else col_w, JOG_Y), (mid, JOG_Y), (mid, ty)], True))
    loops = 0
    for r, s in enumerate(doc.steps):
        if not s.decision or not s.decision.tidak_to or col[r] is None:
            continue
        t = s.decision.tidak_to - 1
        if not 0 <= t < len(doc.steps) or col[t] is None or t == r:
            continue
        cd, ct = col[r], col[t]
        lane_x = col_w * (0.91 - 0.04 * loops)
        loops += 1
        here = cells[(r, cd)]
        dx, dy, dw, dh = here.box()
        y_mid = dy + dh / 2
        if ct == cd:
            here.lines.append(([(dx + dw, y_mid), (lane_x, y_mid)], False))
        elif ct > cd:
            here.lines.append(([(dx + dw, y_mid), (col_w, y_mid)], False))
        else:
            here.lines.append(([(dx, y_mid), (0, y_mid)], False))
        here.labels.append((dx + dw * 0.75 + 0.4 if ct >= cd else max(0.3, dx + dw * 0.25 - 8.4),
                            dy + dh * 0.25 - 0.4, "TIDAK"))
        step = 1 if ct > cd else -1
        for c in range(cd + step, ct, step):
            cells[(r, c)].lines.append(([(0, y_mid), (col_w, y_mid)], False))
        up = t < r
        turn = cells[(r, ct)]
        if ct != cd:
            turn.lines.append(([(0 if ct > cd else col_w, y_mid), (lane_x, y_mid)], False))
        turn.lines.append(([(lane_x, y_mid), (lane_x, 0 if up else turn.height)], False))
        for rr in (range(t + 1, r) if up else range(r + 1, t)):
            cells[(rr, ct)].lines.append(([(lane_x, 0), (lane_x, row_h[rr])], False))
        target = cells[(t, ct)]
        tx, ty, tw, th = target.box()
        target.lines.append(([(lane_x, target.height if up else 0), (lane_x, ty + th / 2), (tx + tw, ty + th / 2)],
                             True))
    return cells


def _arrow_head(points) -> list[tuple[float, float]]:
    (x0, y0), (x1, y1) = points[-2], points[-1]
    length = max(((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5, 1e-6)
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    bx, by = x1 - ux * ARROW * 1.6, y1 - uy * ARROW * 1.6
    return [(x1, y1), (bx - uy * ARROW, by + ux * ARROW), (bx + uy * ARROW, by - ux * ARROW)]


def svg(cell: CellDrawing) -> str:
    """The cell as inline SVG, sized in millimetres."""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{cell.width:.2f}mm" height="{cell.height:.2f}mm" '
             f'viewBox="0 0 {cell.width:.2f} {cell.height:.2f}">']
    for points, arrow in cell.lines:
        pts = " ".join(f"{x:.2f},{y:.2f}" for x, y in points)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#000" stroke-width="0.3"/>')
        if arrow:
            head = " ".join(f"{x:.2f},{y:.2f}" for x, y in _arrow_head(points))
            parts.append(f'<polygon points="{head}" fill="#000"/>')
    if cell.symbol:
        x, y, w, h = cell.box()
        if cell.symbol == DECISION:
            pts = f"{x + w / 2:.2f},{y:.2f} {x + w:.2f},{y + h / 2:.2f} {x + w / 2:.2f},{y + h:.2f} {x:.2f},{y + h / 2:.2f}"
            parts.append(f'<polygon points="{pts}" fill="#fff" stroke="#000" stroke-width="0.35"/>')
        else:
            rx = h / 2 if cell.symbol == TERMINATOR else 0
            parts.append(f'<rect x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" rx="{rx:.2f}" '
                         f'fill="#fff" stroke="#000" stroke-width="0.35"/>')
    for x, y, text in cell.labels:
        parts.append(f'<text x="{x:.2f}" y="{y:.2f}" font-size="2.3" font-family="DejaVu Sans">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)


def png(cell: CellDrawing, dpi: int = 200) -> bytes:
    """The cell as a PNG picture (for DOCX), drawn with Pillow at `dpi`."""
    from PIL import Image, ImageDraw, ImageFont
    k = dpi / 25.4
    size = (max(1, round(cell.width * k)), max(1, round(cell.height * k)))
    image = Image.new("RGBA", size, (255, 255, 255, 0))  # transparent: the table borders show through
    draw = ImageDraw.Draw(image)
    stroke = max(1, round(0.3 * k))
    scale = lambda pts: [(x * k, y * k) for x, y in pts]  # noqa: E731
    for points, arrow in cell.lines:
        draw.line(scale(points), fill="black", width=stroke, joint="curve")
        if arrow:
            draw.polygon(scale(_arrow_head(points)), fill="black")
    if cell.symbol:
        x, y, w, h = cell.box()
        if cell.symbol == DECISION:
            draw.polygon(scale([(x + w / 2, y), (x + w, y + h / 2), (x + w / 2, y + h), (x, y + h / 2)]),
                         fill="white", outline="black", width=stroke)
        else:
            radius = h / 2 * k if cell.symbol == TERMINATOR else 0
            draw.rounded_rectangle([x * k, y * k, (x + w) * k, (y + h) * k], radius=radius, fill="white",
                                   outline="black", width=stroke)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", max(8, round(2.3 * k)))
    except OSError:
        font = ImageFont.load_default()
    for x, y, text in cell.labels:
        draw.text((x * k, y * k), text, fill="black", font=font, anchor="ls")
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
