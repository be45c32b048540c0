"""A self-contained HTML page: the text, each character shaded by its bits.

The page needs no network: styles, data and a small script are inline. The
text is in the page as escaped plain text (readable without scripts); the
script wraps every character in a ``span`` coloured by the bits the exact
coding model spent on it, and hovering a character shows its probability,
its bits and the model's likeliest guesses (in the ``title`` and in a bar at
the bottom; a link ending in ``#cN`` marks character ``N`` and describes
it there). A character of several UTF-8 bytes costs the sum of its bytes;
its guesses are those for its first byte. Control bytes and bytes that are
not UTF-8 are shown as escapes (``\\r``, ``\\x85``). Long texts are cut at
``MAX_UNITS`` characters and guesses are kept for the first ``DETAIL_UNITS``;
the page says so.
"""

from __future__ import annotations

import base64
import html
import json
import os

import numpy as np

__all__ = ["write_html", "render_html", "MAX_UNITS", "DETAIL_UNITS", "BIT_LIMITS"]

MAX_UNITS = 400_000
DETAIL_UNITS = 200_000
# colour class k holds bits below BIT_LIMITS[k]; the last class the rest
BIT_LIMITS = (0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10)
_PALETTE = ("#ffffff", "#fff8d6", "#ffeeaa", "#ffe07a", "#ffc94f", "#ffa640",
            "#fb7c38", "#ec5234", "#cf2e33", "#a3143f", "#6e0f57", "#3a0a5c")
_DARK = 8  # classes from here on get white text


_ESCAPES = {"\r": "\\r", "\0": "\\0", "\f": "\\f", "\v": "\\v", "\x1b": "\\e"}


def _b64(array) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _byte_units(raw: bytes):
    """Split bytes into characters: (display text, byte lengths, specials)."""
    text = raw.decode("utf-8", errors="surrogateescape")
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")
    escaped = (cps >= 0xDC80) & (cps <= 0xDCFF)  # bytes that are not UTF-8
    nbytes = np.select([cps < 0x80, cps < 0x800, cps < 0x10000], [1, 2, 3], 4)
    nbytes[escaped] = 1
    shown, specials = [], {}
    for i, ch in enumerate(text):
        cp = ord(ch)
        if escaped[i]:
            shown.append("\ufffd")
            specials[i] = f"\\x{cp - 0xDC00:02X}"
        elif (cp < 0x20 and ch not in "\n\t") or cp == 0x7F:
            # a control picture without scripts, an escape with them
            shown.append(chr(0x2400 + cp) if cp < 0x20 else "\u2421")
            specials[i] = _ESCAPES.get(ch, f"\\x{cp:02X}")
        elif 0x80 <= cp < 0xA0:
            shown.append("\ufffd")
            specials[i] = f"\\u{cp:04X}"
        else:
            shown.append(ch)
    return "".join(shown), nbytes, specials


def _token_units(symbols, tokens):
    shown, specials = [], {}
    for i, s in enumerate(symbols):
        tok = tokens[int(s)]
        if len(tok) == 1 and tok.isprintable():
            shown.append(tok)
        else:
            shown.append("\ufffd")
            specials[i] = tok
    return "".join(shown), np.ones(len(symbols), np.int64), specials


def _section_data(detail, tokens):
    """The display text and the JSON blob of one file."""
    if tokens is None:
        text, nbytes, specials = _byte_units(detail.raw)
    else:
        text, nbytes, specials = _token_units(detail.symbols, tokens)
    total_units = len(text)
    units = min(total_units, MAX_UNITS)
    text = text[:units]
    nbytes = nbytes[:units]
    starts = np.concatenate([[0], np.cumsum(nbytes)[:-1]]).astype(np.int64)
    if units:
        unit_bits = np.add.reduceat(detail.bits, starts)
        unit_bits[-1] = detail.bits[starts[-1]:starts[-1] + nbytes[-1]].sum()
    else:
        unit_bits = np.zeros(0)
    detailed = min(units, DETAIL_UNITS)
    first = starts[:detailed]
    wide = detail.top.max(initial=0) > 255
    data = {
        "bits": _b64(np.minimum(np.round(unit_bits * 256), 65535).astype("<u2")),
        "k": int(detail.top.shape[1]),
        "wide": bool(wide),
        "gs": _b64(detail.top[first].astype("<u2" if wide else "u1")),
        "gp": _b64(np.round(detail.top_p[first] * 255).astype("u1")),
        "detailed": detailed,
        "special": {str(i): s for i, s in specials.items() if i < units},
        "multi": {str(i): int(b) for i, b in enumerate(nbytes) if b > 1},
        "units": units,
        "total_units": total_units,
    }
    return text, data


def _fmt(value, fmt="{:.3f}"):
    return "-" if value is None else fmt.format(value)


def _figures(entry) -> str:
    """One line of the file's figures from the report."""
    parts = []
    if entry.get("float"):
        parts.append(f"float model {_fmt(entry['float']['bpc'])} bpc (perplexity "
                     f"{_fmt(entry['float']['perplexity'])})")
    parts.append(f"exact model {_fmt(entry['exact']['bpc'])} bpc")
    if entry.get("archive"):
        parts.append(f"archive {_fmt(entry['archive']['bpc'])} bpc")
    for c in entry.get("classical", {}).values():
        if c["bpc"] is not None:
            parts.append(f"{c['setting']} {_fmt(c['bpc'])}")
    return "; ".join(parts)


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em 1.5em 4em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .2em; }
p { margin: .3em 0; }
.note { color: #8a4b00; }
.legend span { display: inline-block; padding: 0 .5em; margin: 0 1px;
  border: 1px solid #ccc; font-size: 12px; }
pre.text { font: 13px/1.5 ui-monospace, Menlo, Consolas, monospace;
  white-space: pre-wrap; overflow-wrap: anywhere; border: 1px solid #ddd;
  padding: .6em; background: #fff; }
pre.text span:hover { outline: 1px solid #000; }
pre.text .sp { font-style: italic; text-decoration: underline dotted; }
pre.text .nl { opacity: .55; }
pre.text .mark { outline: 2px solid #06c; }
#info { position: fixed; left: 0; right: 0; bottom: 0; padding: .4em 1.5em;
  background: #222; color: #eee; font: 13px ui-monospace, monospace;
  min-height: 1.4em; white-space: pre; overflow: hidden; }
"""

_SCRIPT = r"""
(function () {
  var LIM = %(limits)s;
  var info = document.getElementById('info');
  function bytesOf(b64) {
    var s = atob(b64), a = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
    return a;
  }
  function cls(b) { var k = 0; while (k < LIM.length && b >= LIM[k]) k++; return k; }
  function label(d, sym) {
    if (d.tokens) {
      var t = d.tokens[sym];
      return t === ' ' ? '\u2423' : (t.length === 1 ? "'" + t + "'" : t);
    }
    if (sym === 32) return '\u2423';
    if (sym === 10) return '\u21b5';
    if (sym === 9) return '\u21e5';
    if (sym > 32 && sym < 127) return "'" + String.fromCharCode(sym) + "'";
    return '\\x' + (sym < 16 ? '0' : '') + sym.toString(16).toUpperCase();
  }
  document.querySelectorAll('pre.text').forEach(function (pre) {
    var d = JSON.parse(document.getElementById(pre.dataset.src).textContent);
    var chars = Array.from(pre.textContent);
    var b8 = bytesOf(d.bits), n = b8.length / 2, bits = new Float64Array(n);
    for (var i = 0; i < n; i++) bits[i] = (b8[2 * i] | (b8[2 * i + 1] << 8)) / 256;
    if (chars.length !== n) {
      throw new Error('text and data differ: ' + chars.length + ' vs ' + n);
    }
    var gs = bytesOf(d.gs), gp = bytesOf(d.gp), k = d.k;
    function guess(i, j) {
      var o = i * k + j;
      return d.wide ? gs[2 * o] | (gs[2 * o + 1] << 8) : gs[o];
    }
    function describe(i) {
      var b = bits[i], sp = d.special[i], ch = chars[i];
      var shown = sp !== undefined ? sp : (ch === '\n' ? '\u21b5' :
                  (ch === ' ' ? '\u2423' : (ch === '\t' ? '\u21e5' : ch)));
      var nb = d.multi[i] || 1;
      var text = shown + '  p ' + Math.pow(2, -b).toPrecision(3) + ', ' +
                 b.toFixed(2) + ' bits' + (nb > 1 ? ' (' + nb + ' bytes)' : '');
      if (i < d.detailed) {
        var g = [];
        for (var j = 0; j < k; j++) {
          g.push(label(d, guess(i, j)) + ' ' + (gp[i * k + j] / 255).toFixed(2));
        }
        text += '  guesses ' + g.join(', ') + (nb > 1 ? ' (first byte)' : '');
      }
      return text + '  at ' + i.toLocaleString('en');
    }
    var frag = document.createDocumentFragment();
    for (var i = 0; i < n; i++) {
      var s = document.createElement('span'), sp = d.special[i];
      s.className = 'c' + cls(bits[i]);
      if (sp !== undefined) { s.textContent = sp; s.className += ' sp'; }
      else if (chars[i] === '\n') { s.textContent = '\u21b5'; s.className += ' nl'; }
      else s.textContent = chars[i];
      s.i = i;
      frag.appendChild(s);
      if (chars[i] === '\n') frag.appendChild(document.createTextNode('\n'));
    }
    pre.textContent = '';
    pre.appendChild(frag);
    var m = /^#c(\d+)$/.exec(location.hash);
    if (m && +m[1] < n) {
      // a link to one character: mark it and describe it
      var marked = pre.querySelectorAll('span')[+m[1]];
      marked.className += ' mark';
      info.textContent = describe(+m[1]);
    }
    pre.addEventListener('mouseover', function (e) {
      var s = e.target;
      if (s.i === undefined) return;
      var t = describe(s.i);
      if (!s.title) s.title = t;
      info.textContent = t;
    });
  });
  document.body.setAttribute('data-rendered', 'ok');
})();
"""


def _colour_css() -> str:
    rules = []
    for k, colour in enumerate(_PALETTE):
        fg = "color: #fff; " if k >= _DARK else ""
        rules.append(f".c{k} {{ background: {colour}; {fg}}}")
    return "\n".join(rules)


def _legend() -> str:
    edges = (0,) + BIT_LIMITS
    items = []
    for k, colour in enumerate(_PALETTE):
        text = (f"{edges[k]:g}\u2013{edges[k + 1]:g}" if k < len(BIT_LIMITS)
                else f"\u2265 {edges[k]:g}")
        items.append(f'<span class="c{k}">{text}</span>')
    return "".join(items)


def render_html(report: dict, details) -> str:
    """The page for the files of ``report``, one :class:`FileDetail` each."""
    model = report["model"]
    tokens = None
    if model["alphabet"] != "bytes":
        from .modeldir import read_card

        tokens = read_card(model["path"])["alphabet"]["tokens"]
    esc = html.escape
    unit = "byte" if tokens is None else "preprocessed character"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>rnnzip eval: {esc(model['name'])}</title>",
        f"<style>{_STYLE}{_colour_css()}</style></head><body>",
        f"<h1>Where the bits go: model {esc(model['name'])}</h1>",
        f"<p>{esc(model['cell'])} {model['num_layers']}x{model['num_hiddens']}, "
        f"{model['num_params']:,} parameters. Each character is shaded by the bits "
        f"the exact coding model spends on it (what the archive pays, before the "
        f"coder's overhead); bpc figures are bits per {unit}. Hover a character "
        f"for its probability and the model's likeliest guesses.</p>",
        f'<p class="legend">bits: {_legend()}</p>',
    ]
    if tokens is not None:
        out.append(f'<p class="note">Preprocessed text: the model reads the '
                   f"text after its preprocessing ({esc(str(model['preprocessing']))})"
                   f", so this is what it was evaluated on, not the file's bytes."
                   f"</p>")
    for idx, (entry, detail) in enumerate(zip(report["files"], details)):
        text, data = _section_data(detail, tokens)
        if tokens is not None:
            data["tokens"] = tokens
        name = entry["path"] if entry["path"] != "-" else "standard input"
        out.append(f"<h2>{esc(name)}</h2>")
        out.append(f"<p>{entry['bytes']:,} bytes; {esc(_figures(entry))}</p>")
        if data["units"] < data["total_units"]:
            out.append(f'<p class="note">Showing the first {data["units"]:,} of '
                       f'{data["total_units"]:,} characters.</p>')
        if data["detailed"] < data["units"]:
            out.append(f'<p class="note">Guesses are kept for the first '
                       f'{data["detailed"]:,} characters only.</p>')
        blob = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
        out.append(f'<script type="application/json" id="d{idx}">{blob}</script>')
        # the newline after <pre> is eaten by the parser, the text's own is kept
        out.append(f'<pre class="text" data-src="d{idx}">\n'
                   f"{esc(text, quote=False)}</pre>")
    out.append('<div id="info">hover a character</div>')
    out.append(f"<script>{_SCRIPT % {'limits': json.dumps(list(BIT_LIMITS))}}"
               f"</script>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write_html(path: str, report: dict, details) -> None:
    """Write the page of :func:`render_html` to ``path``."""
    page = render_html(report, details)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, path)
