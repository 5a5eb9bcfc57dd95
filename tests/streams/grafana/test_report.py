"""``llmwatch report``: seeded ClickHouse -> self-contained HTML -> screenshot in headless Chromium."""
from __future__ import annotations

import datetime as dt
import os
import re
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest

from dashboards import queries
from streams.grafana import report as rp

CHROMIUM = os.environ.get("LLMWATCH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
REPO = Path(rp.__file__).resolve().parents[2]
END = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)

SEED = textwrap.dedent("""
    import datetime as dt, sys
    from dashboards.seed import seed
    from streams.storage.clickhouse import connect, migrate
    client = connect(sys.argv[1])
    migrate(client, rollup_ttl_days=3650, raw_ttl_days=3650)
    seed(client, rows=20_000, end=dt.datetime.fromisoformat(sys.argv[2]), hours=24)
    client.close()
""")


def _run(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    # chDB allows one data path per process: seeding and the report run in their own processes
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of a day of seeded traffic, written by the real CLI."""
    root = tmp_path_factory.mktemp("report")
    dsn = f"chdb://{root / 'clickhouse'}"
    seeded = _run([sys.executable, "-c", SEED, dsn, END.isoformat()])
    assert seeded.returncode == 0, seeded.stderr[-3000:]
    out = root / "report.html"
    made = _run([sys.executable, "-m", "streams", "report", "--dsn", dsn, "--out", str(out),
                 "--from", (END - dt.timedelta(hours=24)).isoformat(), "--to", END.isoformat()])
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-3000:]
    return out


def _timeseries_panel_count() -> int:
    count = 0
    for board in queries.load_dashboards():
        types = {p.get("title"): p.get("type", "") for p in rp._flat(board.get("panels", []))}
        count += sum(rp._panel_kind(types.get(p.title, ""), p.format) == "timeseries"
                     for p in queries.iter_panels(board))
    return count


def test_report_has_an_svg_per_time_series_panel(report_html: Path) -> None:
    page = report_html.read_text()
    sections = re.findall(r'<section class="panel[^"]*" data-kind="timeseries">(.*?)</section>', page, re.S)
    assert len(sections) == _timeseries_panel_count() > 0
    assert all("<svg" in s for s in sections)
    assert "query failed" not in page


def test_report_is_self_contained(report_html: Path) -> None:
    page = report_html.read_text()
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert not re.search(r"url\(|@import", page, re.I)
    # data may contain URLs as text; markup outside table cells and SQL must not
    markup = re.sub(r"<(td|pre)\b[^>]*>.*?</\1>", "", page, flags=re.S)
    assert "http://" not in markup and "https://" not in markup


def decode_png(path: Path) -> np.ndarray:
    """RGB pixels of an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes), with zlib and numpy."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, ihdr = 8, bytearray(), None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + n])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    assert ihdr is not None, "PNG without IHDR"
    width, height, depth, ctype, _, _, interlace = ihdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unsupported PNG layout {ihdr}"
    bpp, stride = (3 if ctype == 2 else 4), width * (3 if ctype == 2 else 4)
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        ftype, line = int(raw[y, 0]), raw[y, 1:]
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:  # Sub: a running sum per channel
            cur = (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.int64) & 255).astype(np.uint8).reshape(stride)
        elif ftype == 2:  # Up
            cur = line + prev
        else:  # Average / Paeth depend on the reconstructed left byte: byte by byte
            buf, up = bytearray(line.tobytes()), prev.tobytes()
            for i in range(stride):
                a = buf[i - bpp] if i >= bpp else 0
                b = up[i]
                if ftype == 3:
                    buf[i] = (buf[i] + ((a + b) >> 1)) & 255
                    continue
                c = up[i - bpp] if i >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                buf[i] = (buf[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            cur = np.frombuffer(bytes(buf), dtype=np.uint8)
        out[y] = prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def test_report_renders_in_headless_chromium(report_html: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}; install it: {CHROMIUM_INSTALL}")
    png = tmp_path / "out.png"
    shot = _run([
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1400,3000",
        report_html.as_uri(),
    ], timeout=120)
    assert png.exists(), f"chromium wrote no screenshot (rc {shot.returncode}): {shot.stderr[-2000:]}"

    pixels = decode_png(png)
    assert pixels.shape == (3000, 1400, 3)
    packed = (pixels[..., 0].astype(np.uint32) << 16) | (pixels[..., 1].astype(np.uint32) << 8) | pixels[..., 2]
    colours, counts = np.unique(packed, return_counts=True)
    assert len(colours) > 50, f"only {len(colours)} colours: the page looks blank"
    assert 1 - counts.max() / packed.size > 0.05, "over 95% of the page is one colour"
    orange = int(rp.PALETTE[1][1:], 16)  # the second series' colour: only chart lines and legends use it
    assert (packed == orange).sum() > 100, "no chart lines visible in the screenshot"


# -- rendering units ------------------------------------------------------------------------------

TR = rp.TimeRange(END - dt.timedelta(hours=2), END)


def _result(kind: str, columns: tuple[str, ...], rows: list[tuple], title: str = "p") -> rp.PanelResult:
    panel = queries.Panel("d", title, "SELECT 1", "time_series" if kind == "timeseries" else "table", ())
    return rp.PanelResult(panel, kind, "", "SELECT 1", columns, tuple(rows))


def test_everything_is_escaped() -> None:
    evil = "<script>alert('x')</script>"
    t = END - dt.timedelta(hours=1)
    results = [
        _result("timeseries", ("time", evil, "v"), [(t, evil, 1.0)], title=evil),
        _result("table", (evil,), [(evil,)], title=evil),
        _result("stat", ("label", "v"), [(evil, 1), (evil, 2)], title=evil),
        _result("bars", ("label", "v"), [(evil, 3.0)], title=evil),
    ]
    page = rp.render_html([rp.DashboardResult("d", evil, {"app": [evil]}, results)], TR)
    assert "<script" not in page and "&lt;script&gt;" in page


def test_long_format_series_are_split_by_label() -> None:
    t0, t1 = END - dt.timedelta(minutes=10), END - dt.timedelta(minutes=5)
    rows = [(t0, "a", 1.0), (t0, "b", 2.0), (t1, "a", 3.0), (t1, "b", None)]
    series = rp.to_series(("time", "app", "calls"), rows)
    assert [(s.name, [v for _, v in s.points]) for s in series] == [("a", [1.0, 3.0]), ("b", [2.0, None])]


def test_units_and_ranges() -> None:
    assert rp.format_value(0.0234, "percentunit") == "2.34%"
    assert rp.format_value(1500, "ms") == "1.50 s"
    assert rp.format_value(12345) == "12.3K"
    assert rp.format_value(999, "decbytes") == "999 B"
    assert rp.format_value(1500, "decbytes") == "1.50 kB"
    assert rp.format_value(1500, "bytes") == "1.46 KiB"
    assert rp.format_value(3 * 1024**3, "bytes") == "3.00 GiB"
    assert rp.format_value(2.5e9, "decbytes") == "2.50 GB"
    assert rp.time_range(since="6h", now=END).start == END - dt.timedelta(hours=6)
    assert rp.TimeRange(END - dt.timedelta(hours=24), END).interval_s == 600
    with pytest.raises(ValueError, match="use a number and a unit"):
        rp.parse_since("yesterday")
