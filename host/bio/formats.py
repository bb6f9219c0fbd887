"""Minutiae sets a user brings: ISO/IEC 19794-2:2005 records, ANSI/INCITS 378-2004 templates
and NIST `.xyt` files, to and from the compact card format (ISO/IEC 19794-2:2005 §8.2).

The bytes are untrusted: every length, count and field is checked against the
record's own header and the format's limits before it is used, nothing is
allocated from a claimed size beyond the bytes actually present, and any
violation raises `FormatError` (a `ValueError`).

Record layouts (finger minutiae record format, both standards):

- ISO/IEC 19794-2:2005 §7: 24-byte header `"FMR\\0"`, `" 20\\0"`, record length
  (4 bytes), capture equipment (2), image width and height (2 + 2, pixels), X
  and Y resolution (2 + 2, pixels per centimetre), finger views (1), reserved
  (1).
- ANSI/INCITS 378-2004 §6.4: the same, but the record length has 2 bytes (or
  `0000` then 4 bytes) and a 4-byte CBEFF product identifier precedes the
  capture equipment.
- Then per finger view (§7.3 / §6.5): finger position (1), view number (4 bits)
  and impression type (4 bits), finger quality (1), minutiae count (1); per
  minutia 6 bytes: type (2 bits) and X (14 bits), reserved (2 bits) and Y (14
  bits), angle (1: ISO in 360/256 degree units, ANSI in 2 degree units),
  quality (1); then the extended data block length (2) and its bytes.

Coordinates are pixels from the top left corner, Y downwards, angles
anticlockwise from the X axis, as in the compact card format; converting is a
change of unit. A NIST `.xyt` file (NBIS mindtct) is one minutia a line, `x y
theta [quality]`, pixels with Y from the bottom, theta in degrees; it carries no
resolution and no image height, so both are parameters.

A set that does not fit the card's 0..25.5 mm is shifted (matching does not
depend on translation); over `max_minutiae` the ones nearest the centre of
mass are kept, as NIST MINEX II prunes.
"""

from __future__ import annotations

from collections.abc import Sequence

from applets.biometric.iso19794 import ANGLE_STEPS, MAX_COORDINATE, Minutia, MinutiaType

MAGIC = b"FMR\x00"
VERSION = b" 20\x00"
ISO_HEADER = 24
ANSI_HEADER = 26
VIEW_HEADER = 4
MINUTIA_BYTES = 6
MAX_RECORD = 1 << 20  # a finger record this large is not a finger record
MAX_VIEWS = 16
XYT_MAX_LINES = 1000
XYT_DPI = 500.0


class FormatError(ValueError):
    """Bytes or text that are not a well-formed minutiae record of the claimed format."""


def _u16(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 2], "big")


def _u32(data: bytes, off: int) -> int:
    return int.from_bytes(data[off : off + 4], "big")


def _view(
    data: bytes, off: int, end: int, angle_deg: float, px_per_mm: tuple[float, float]
) -> tuple[list[tuple[float, float, float, int]], int]:
    """One finger view from `off`: its minutiae in mm/degrees and the offset after it."""
    if off + VIEW_HEADER > end:
        raise FormatError("finger view header runs past the record")
    count = data[off + 3]
    off += VIEW_HEADER
    if off + count * MINUTIA_BYTES + 2 > end:
        raise FormatError(f"{count} minutiae run past the record")
    out = []
    for k in range(count):
        p = off + k * MINUTIA_BYTES
        kind = data[p] >> 6
        if kind == 3:
            raise FormatError(f"minutia {k}: type 11 is reserved")
        x = _u16(data, p) & 0x3FFF
        y = _u16(data, p + 2) & 0x3FFF
        a = data[p + 4]
        if angle_deg == 2.0 and a >= 180:
            raise FormatError(f"minutia {k}: angle {a} beyond 179 (2 degree units)")
        out.append((x / px_per_mm[0], y / px_per_mm[1], a * angle_deg, kind))
    off += count * MINUTIA_BYTES
    ext = _u16(data, off)
    off += 2
    if off + ext > end:
        raise FormatError("extended data runs past the record")
    return out, off + ext


def _record(data: bytes, ansi: bool, view: int, max_minutiae: int) -> tuple[Minutia, ...]:
    if len(data) > MAX_RECORD:
        raise FormatError(f"{len(data)} bytes: larger than any finger record")
    head = ANSI_HEADER if ansi else ISO_HEADER
    if len(data) < head or data[:4] != MAGIC or data[4:8] != VERSION:
        raise FormatError("not a finger minutiae record (FMR, version 20)")
    if ansi:
        length, off = _u16(data, 8), 10
        if length == 0:  # the 6-byte length form
            head += 4
            if len(data) < head:
                raise FormatError("record shorter than its header")
            length, off = _u32(data, 10), 14
        off += 4  # CBEFF product identifier
    else:
        length, off = _u32(data, 8), 12
    if length != len(data):
        raise FormatError(f"record length {length} but {len(data)} bytes")
    xres, yres = _u16(data, off + 6), _u16(data, off + 8)
    views = data[off + 10]
    if xres == 0 or yres == 0:
        raise FormatError("zero resolution")
    if not 1 <= views <= MAX_VIEWS:
        raise FormatError(f"{views} finger views")
    if not 0 <= view < views:
        raise FormatError(f"view {view} asked, the record has {views}")
    off = head
    px_per_mm = (xres / 10.0, yres / 10.0)
    chosen: list[tuple[float, float, float, int]] = []
    for k in range(views):
        pts, off = _view(data, off, len(data), 2.0 if ansi else 360.0 / 256, px_per_mm)
        if k == view:
            chosen = pts
    if off != len(data):
        raise FormatError(f"{len(data) - off} bytes after the last finger view")
    return to_card(chosen, max_minutiae)


def parse_iso19794_2(data: bytes, view: int = 0, max_minutiae: int = 60) -> tuple[Minutia, ...]:
    """The compact-card minutiae of finger view `view` of an ISO/IEC 19794-2:2005 record."""
    return _record(bytes(data), False, view, max_minutiae)


def parse_ansi378(data: bytes, view: int = 0, max_minutiae: int = 60) -> tuple[Minutia, ...]:
    """The compact-card minutiae of finger view `view` of an ANSI/INCITS 378-2004 template."""
    return _record(bytes(data), True, view, max_minutiae)


def parse_xyt(
    text: str,
    dpi: float = XYT_DPI,
    height_px: int | None = None,
    max_minutiae: int = 60,
) -> tuple[Minutia, ...]:
    """The compact-card minutiae of a NIST `.xyt` text (types unknown: "other").

    `height_px` flips Y back to a top-left origin; without it Y is mirrored about
    the set's own extent (the same set up to a translation, which matching ignores).
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) > XYT_MAX_LINES:
        raise FormatError(f"{len(lines)} lines: more minutiae than any finger has")
    ppmm = dpi / 25.4
    raw = []
    for n, ln in enumerate(lines, 1):
        parts = ln.split()
        if not 3 <= len(parts) <= 4:
            raise FormatError(f"line {n}: expected x y theta [quality]")
        try:
            x, y, t = (int(p) for p in parts[:3])
        except ValueError:
            raise FormatError(f"line {n}: not integers") from None
        if not (0 <= x <= 0xFFFF and 0 <= y <= 0xFFFF and 0 <= t < 360):
            raise FormatError(f"line {n}: out of range")
        raw.append((x, y, t))
    top = height_px if height_px is not None else max((y for _, y, _ in raw), default=0)
    pts = [(x / ppmm, (top - y) / ppmm, float(t), int(MinutiaType.OTHER)) for x, y, t in raw]
    return to_card(pts, max_minutiae)


def to_card(
    pts: Sequence[tuple[float, float, float, int]], max_minutiae: int = 60
) -> tuple[Minutia, ...]:
    """(x mm, y mm, degrees, type) -> compact-card minutiae, shifted into 0..25.5 mm if needed,
    pruned to the `max_minutiae` nearest the centre of mass."""
    pts = list(pts)
    if len(pts) > max_minutiae:
        mx = sum(p[0] for p in pts) / len(pts)
        my = sum(p[1] for p in pts) / len(pts)
        pts = sorted(pts, key=lambda p: (p[0] - mx) ** 2 + (p[1] - my) ** 2)[:max_minutiae]
    if not pts:
        return ()
    lim = MAX_COORDINATE / 10
    dx = dy = 0.0
    for axis in (0, 1):
        lo = min(p[axis] for p in pts)
        hi = max(p[axis] for p in pts)
        if hi - lo > lim:
            raise FormatError(f"the minutiae span {hi - lo:.1f} mm, more than the card's 25.5")
        shift = 0.0 if lo >= 0 and hi <= lim else (lim - hi - lo) / 2
        if axis == 0:
            dx = shift
        else:
            dy = shift
    return tuple(
        Minutia(
            min(MAX_COORDINATE, max(0, int(round((x + dx) * 10)))),
            min(MAX_COORDINATE, max(0, int(round((y + dy) * 10)))),
            kind,
            int(round(t / (360.0 / ANGLE_STEPS))) % ANGLE_STEPS,
        )
        for x, y, t, kind in pts
    )


def _views_bytes(minutiae: Sequence[Minutia], ansi: bool) -> bytes:
    body = bytearray((0, 0, 100, len(minutiae)))  # finger unknown, view 0, live-scan plain
    for m in minutiae:
        # 100 pixels/cm: one pixel is 0.1 mm, the card's unit.
        body += ((m.kind << 14) | m.x).to_bytes(2, "big") + m.y.to_bytes(2, "big")
        deg = m.angle * 360.0 / ANGLE_STEPS
        a = int(round(deg / 2.0)) % 180 if ansi else int(round(deg / (360.0 / 256))) % 256
        body += bytes((a, 60))
    return bytes(body) + b"\x00\x00"


def encode_iso19794_2(minutiae: Sequence[Minutia]) -> bytes:
    """An ISO/IEC 19794-2:2005 record of one view at 100 pixels/cm (0.1 mm a pixel)."""
    if len(minutiae) > 255:
        raise ValueError("at most 255 minutiae a view")
    views = _views_bytes(minutiae, False)
    length = ISO_HEADER + len(views)
    head = MAGIC + VERSION + length.to_bytes(4, "big") + b"\x00\x00"
    head += (256).to_bytes(2, "big") * 2 + (100).to_bytes(2, "big") * 2 + b"\x01\x00"
    return head + views


def encode_ansi378(minutiae: Sequence[Minutia]) -> bytes:
    """An ANSI/INCITS 378-2004 template of one view at 100 pixels/cm (2-byte length form)."""
    if len(minutiae) > 255:
        raise ValueError("at most 255 minutiae a view")
    views = _views_bytes(minutiae, True)
    length = ANSI_HEADER + len(views)
    head = MAGIC + VERSION + length.to_bytes(2, "big") + b"\x00\x00\x00\x00" + b"\x00\x00"
    head += (256).to_bytes(2, "big") * 2 + (100).to_bytes(2, "big") * 2 + b"\x01\x00"
    return head + views


def encode_xyt(minutiae: Sequence[Minutia], dpi: float = XYT_DPI, height_px: int = 0) -> str:
    """NIST `.xyt` text (Y from the bottom of an image `height_px` high)."""
    ppmm = dpi / 25.4
    lines = []
    for m in minutiae:
        x = int(round(m.x / 10 * ppmm))
        y = height_px - int(round(m.y / 10 * ppmm))
        lines.append(f"{x} {y} {int(round(m.angle * 360 / ANGLE_STEPS)) % 360} 50")
    return "\n".join(lines) + "\n"


def parse_file(path: str, data: bytes, max_minutiae: int = 60) -> tuple[Minutia, ...]:
    """By extension: `.xyt` text, `.ansi`/`.378` ANSI template, anything else an ISO record
    (an FMR record is told from ANSI by trying ISO's 4-byte length first)."""
    low = path.lower()
    if low.endswith(".xyt"):
        try:
            return parse_xyt(data.decode("ascii"), max_minutiae=max_minutiae)
        except UnicodeDecodeError:
            raise FormatError("an .xyt file is ASCII text") from None
    if low.endswith((".ansi", ".378")):
        return parse_ansi378(data, max_minutiae=max_minutiae)
    try:
        return parse_iso19794_2(data, max_minutiae=max_minutiae)
    except FormatError:
        return parse_ansi378(data, max_minutiae=max_minutiae)
