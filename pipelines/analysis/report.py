"""A self-contained HTML report: every video, GIF and plot embedded as a base64 data URI.

The page needs no network and no other file. A small script marks every media element with
``data-media-state="loaded"`` once its data is decoded (``loadeddata`` for videos, ``load``
for images) or ``"error"``, and keeps a count in ``#media-status`` — which is what the
headless-Chromium test reads back from the rendered DOM.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import os
from typing import Dict, List, Optional, Sequence

MIME = {".mp4": "video/mp4", ".gif": "image/gif", ".png": "image/png", ".webm": "video/webm"}

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.media { display: inline-block; vertical-align: top; margin: 0 1.2em 1em 0; }
.media img, .media video { image-rendering: pixelated; border: 1px solid #888; max-height: 900px; }
figcaption { font-size: 0.85em; color: #555; max-width: 480px; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0 1em 0; }
td, th { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eee; } td:first-child, th:first-child { text-align: left; }
#media-status { font-size: 0.8em; color: #777; }
"""

_SCRIPT = """
function s3taUpdate() {
  var all = document.querySelectorAll('[data-media]'), loaded = 0, failed = 0;
  all.forEach(function (el) {
    var s = el.getAttribute('data-media-state');
    if (s === 'loaded') loaded++; else if (s === 'error') failed++;
  });
  var status = document.getElementById('media-status');
  status.textContent = 'media: ' + loaded + ' of ' + all.length + ' loaded, ' + failed + ' failed';
  status.setAttribute('data-loaded', loaded); status.setAttribute('data-failed', failed);
  status.setAttribute('data-total', all.length);
}
function s3taMark(el, ok) { el.setAttribute('data-media-state', ok ? 'loaded' : 'error'); s3taUpdate(); }
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('img[data-media]').forEach(function (img) {
    if (img.complete && !img.hasAttribute('data-media-state')) s3taMark(img, img.naturalWidth > 0);
  });
  document.querySelectorAll('video[data-media]').forEach(function (v) {
    if (v.readyState >= 2 && !v.hasAttribute('data-media-state')) s3taMark(v, true);
  });
  s3taUpdate();
});
"""


def data_uri(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in MIME:
        raise ValueError(f"cannot embed {path!r}: expected one of {sorted(MIME)}")
    with open(path, "rb") as f:
        return f"data:{MIME[ext]};base64," + base64.b64encode(f.read()).decode("ascii")


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return "–" if v != v else f"{v:.4g}"
    return html.escape(str(v))


class Section:
    """Parts of a page in order (``heading``, ``text``, ``media``, ``table``), each method chainable."""

    def __init__(self):
        self.parts: List[str] = []

    def heading(self, text: str) -> "Section":
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def text(self, text: str) -> "Section":
        self.parts.append(f"<p>{html.escape(text)}</p>")
        return self

    def media(self, path: str, caption: str = "", width: Optional[int] = None) -> "Section":
        """Embeds an MP4/WebM (as <video>) or a GIF/PNG (as <img>)."""
        uri = data_uri(path)
        size = f' width="{int(width)}"' if width else ""
        name = html.escape(os.path.basename(path))
        if uri.startswith("data:video/"):
            tag = (f'<video data-media="{name}" src="{uri}" controls muted loop autoplay playsinline '
                   f'preload="auto"{size} onloadeddata="s3taMark(this, true)" '
                   f'onerror="s3taMark(this, false)"></video>')
        else:
            tag = (f'<img data-media="{name}" src="{uri}" alt="{name}"{size} '
                   f'onload="s3taMark(this, true)" onerror="s3taMark(this, false)">')
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self.parts.append(f'<figure class="media">{tag}{cap}</figure>')
        return self

    def table(self, headers: Sequence[str], rows: Sequence[Sequence], caption: str = "") -> "Section":
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in rows)
        cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
        self.parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        return self

    def video_pair(self, pair: Dict[str, str], gif_max_mb: float) -> "Section":
        """The MP4 of a ``{"mp4", "gif"}`` pair, and the GIF too unless it is over ``gif_max_mb``
        (then a line says it is next to the page)."""
        self.media(pair["mp4"], "MP4")
        size_mb = os.path.getsize(pair["gif"]) / 2 ** 20
        if size_mb <= gif_max_mb:
            return self.media(pair["gif"], "GIF")
        return self.text(f"{os.path.basename(pair['gif'])} ({size_mb:.1f} MB) is next to this page; not embedded "
                         f"(over report_gif_max_mb={gif_max_mb:g}).")

    def add(self, section: "Section") -> "Section":
        """Appends the parts of another section."""
        self.parts.extend(section.parts)
        return self


class Report(Section):
    """A titled :class:`Section` that writes itself as one HTML file."""

    def __init__(self, title: str):
        super().__init__()
        self.title = title

    def html(self) -> str:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style>"
                f"<script>{_SCRIPT}</script></head><body>"
                f"<h1>{html.escape(self.title)}</h1><p id=\"media-status\">media: not yet loaded</p>"
                + "\n".join(self.parts) + "</body></html>\n")

    def write(self, path: str) -> str:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.html())
        os.replace(tmp, path)
        return path


@dataclasses.dataclass
class Written:
    """What one analysis leaves in the output directory's shared files: its entries of
    summary.json, of the summary's ``files`` and ``timings``, and its section of report.html."""
    summary: dict = dataclasses.field(default_factory=dict)
    files: dict = dataclasses.field(default_factory=dict)
    timings: dict = dataclasses.field(default_factory=dict)
    section: Section = dataclasses.field(default_factory=Section)


# ------------------------------------------------------------------ headless rendering check

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--mute-audio", "--autoplay-policy=no-user-gesture-required")


def find_chromium() -> Optional[str]:
    import shutil
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def render_dom(html_path: str, budget_ms: int = 20000, timeout: float = 120.0) -> str:
    """The DOM of ``html_path`` after headless Chromium has loaded it (``--dump-dom``).

    Chromium runs in its own process group, which is ended afterwards (its helper processes
    included) and on a timeout (RuntimeError with the end of its stderr).
    """
    import signal
    import subprocess
    import tempfile
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found on PATH; install Debian's 'chromium' package")
    with tempfile.TemporaryDirectory(prefix="s3ta-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
               "--dump-dom", "file://" + os.path.abspath(html_path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise RuntimeError(f"chromium did not finish rendering {html_path} within {timeout:.0f}s: "
                               f"{err[-2000:]}") from None
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)      # helper processes left behind
            except ProcessLookupError:
                pass
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited with {proc.returncode}: {err[-2000:]}")
    return out


def media_states(dom: str) -> dict:
    """``{media name: state}`` for every ``data-media`` element of a dumped DOM."""
    import re
    states = {}
    for tag in re.findall(r"<(?:img|video)\b[^>]*>", dom):
        name = re.search(r'data-media="([^"]*)"', tag)
        state = re.search(r'data-media-state="([^"]*)"', tag)
        if name:
            states[name.group(1)] = state.group(1) if state else "pending"
    return states
