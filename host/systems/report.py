"""Scenario reports: the narrative (stderr), JSON (stdout) and one self-contained HTML file.

The HTML report is one file with no network access and no script: a header
with the outcome and the verdicts, an SVG sequence diagram of the run (a
lifeline per party, an arrow per step, failed steps in red, each arrow a link
to its step), then every step with its APDU/HTTP/link messages folded under
it (`<details>`), readable in any browser.

The traces hold what passed: APDUs and ES9+ bodies as they were (a bound
profile package is encrypted, but treat a report like a TRAFFIC-level log).
"""

from __future__ import annotations

import html
import json
from typing import Any

from host.systems.scenario import Message, RunResult, StepRecord

__all__ = [
    "html_report",
    "html_report_many",
    "json_report",
    "narrative_line",
    "summary_lines",
]

_COL = 230  # horizontal distance between lifelines
_LEFT = 130
_TOP = 86  # first step's arrow
_ROW = 40
_TRACE_LIMIT = 8000  # characters of one request/response shown in the HTML


def narrative_line(step: StepRecord) -> str:
    """One line per step, as `cardemu demo` prints it, with the step's number."""
    return "  " + step.line()


def summary_lines(result: RunResult) -> list[str]:
    """The end of the narrative: the outcome and each verdict."""
    head = f"{result.scenario}: {result.outcome}"
    if result.fault:
        head += f" under fault {result.fault}"
    lines = [head + f" ({result.elapsed:.2f} s)"]
    for v in result.verdicts:
        lines.append(f"  [{'ok' if v.ok else 'FAILED'}] {v.name}: {v.detail}")
    return lines


def json_report(result: RunResult) -> str:
    """The run as JSON (stable keys; bytes as hex, HTTP bodies as text)."""
    return json.dumps(result.to_json(), indent=2)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _svg(result: RunResult, anchor: str = "") -> str:
    names = [p.name for p in result.parties]
    x = {name: _LEFT + i * _COL for i, name in enumerate(names)}
    width = _LEFT + (len(names) - 1) * _COL + _LEFT
    height = _TOP + len(result.steps) * _ROW + 30
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Sequence diagram of {_e(result.scenario)}">',
        "<defs>"
        f'<marker id="{anchor}arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#333"/></marker>'
        f'<marker id="{anchor}arrow-failed" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#c0392b"/></marker>'
        "</defs>",
    ]
    for p in result.parties:
        cx = x[p.name]
        out.append(
            f'<g class="party"><rect x="{cx - 95}" y="8" width="190" height="44" rx="6" '
            f'class="party-{_e(p.kind)}"/>'
            f'<text x="{cx}" y="27" text-anchor="middle" class="party-name">{_e(p.name)}</text>'
            f'<text x="{cx}" y="44" text-anchor="middle" class="party-kind">{_e(p.kind)}</text>'
            f"<title>{_e(p.description)}</title></g>"
            f'<line x1="{cx}" y1="52" x2="{cx}" y2="{height - 10}" class="lifeline"/>'
        )
    for i, step in enumerate(result.steps):
        y = _TOP + i * _ROW
        spec = step.spec
        failed = step.verdict != "ok"
        cls = "step failed" if failed else "step"
        marker = f"{anchor}arrow-failed" if failed else f"{anchor}arrow"
        label = f"{spec.number} {spec.name}"
        out.append(f'<a href="#{anchor}step-{i}"><g class="{cls}">')
        src, dst = x.get(spec.source), x.get(spec.target)
        if src is None or dst is None:
            left = _LEFT - 40
            out.append(f'<text x="{left}" y="{y}" class="label">{_e(label)}</text>')
        elif src == dst:
            out.append(
                f'<path d="M{src},{y - 8} h40 v16 h-40" fill="none" marker-end="url(#{marker})"/>'
                f'<text x="{src + 46}" y="{y + 4}" class="label">{_e(label)}</text>'
            )
        else:
            mid = (src + dst) / 2
            out.append(
                f'<line x1="{src}" y1="{y}" x2="{dst}" y2="{y}" marker-end="url(#{marker})"/>'
                f'<text x="{mid}" y="{y - 7}" text-anchor="middle" class="label">{_e(label)}</text>'
            )
            back = len(step.messages) > 0 and not failed
            if back:
                out.append(
                    f'<line x1="{dst}" y1="{y + 8}" x2="{src}" y2="{y + 8}" class="reply" '
                    f'marker-end="url(#{marker})"/>'
                )
        out.append(f"<title>{_e(spec.meaning)} — {_e(step.detail)}</title></g></a>")
    out.append("</svg>")
    return "".join(out)


def _message_html(m: Message) -> str:
    def block(title: str, text: str) -> str:
        if not text:
            return ""
        shown = text if len(text) <= _TRACE_LIMIT else text[:_TRACE_LIMIT] + " …"
        if text.startswith("{"):
            try:
                shown = json.dumps(json.loads(text), indent=2)[:_TRACE_LIMIT]
            except ValueError:
                pass
        return f"<div class=trace><b>{title}</b><pre>{_e(shown)}</pre></div>"

    fault = f' <span class="fault">{_e(m.fault)}</span>' if m.fault else ""
    return (
        f'<details class="msg msg-{m.kind}"><summary><span class=kind>{m.kind.upper()}</span> '
        f"{_e(m.source)} → {_e(m.target)}: {_e(m.summary)}{fault} "
        f'<span class="ms">{m.elapsed * 1000:.1f} ms</span></summary>'
        f"{block('request', m.request)}{block('response', m.response)}</details>"
    )


def _section(result: RunResult, anchor: str = "") -> str:
    """One run's part of a report: status, verdicts, parties, sequence diagram, steps."""
    verdicts = "".join(
        f'<li class="{"ok" if v.ok else "failed"}">{"✔" if v.ok else "✘"} {_e(v.name)}'
        f' <span class="detail">{_e(v.detail)}</span></li>'
        for v in result.verdicts
    )
    parties = "".join(
        f"<li><b>{_e(p.name)}</b> ({_e(p.kind)}): {_e(p.description)}</li>" for p in result.parties
    )
    steps = []
    for i, step in enumerate(result.steps):
        spec = step.spec
        msgs = "".join(_message_html(m) for m in step.messages) or "<p>(no messages)</p>"
        cls = "ok" if step.verdict == "ok" else "failed"
        steps.append(
            f'<details class="step {cls}" id="{anchor}step-{i}"><summary><span class=num>'
            f"{spec.number}</span> <b>{_e(spec.name)}</b> {_e(spec.source)} → "
            f"{_e(spec.target)}: {_e(step.detail)} <span class=ms>{len(step.messages)} "
            f"message(s), {step.elapsed * 1000:.1f} ms</span></summary>"
            f"<p class=meaning>{_e(spec.meaning)}</p>{msgs}</details>"
        )
    status = "ok" if result.ok else "failed"
    fault = f" under fault <code>{_e(result.fault)}</code>" if result.fault else ""
    error = f"<p class=error>{_e(result.error)}</p>" if result.error else ""
    return f"""<p class="status {status}">Scenario <code>{_e(result.scenario)}</code>: outcome
<b>{_e(result.outcome)}</b>{fault}, {result.elapsed:.2f} s,
verdicts {"all hold" if result.ok else "FAILED"}.</p>
{error}
<h3>Verdicts</h3><ul class="verdicts">{verdicts}</ul>
<h3>Parties</h3><ul>{parties}</ul>
<h3>Sequence</h3><div class="diagram">{_svg(result, anchor)}</div>
<h3>Steps</h3>{"".join(steps)}"""


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} — cardemu report</title>
<style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
{body}
<footer>cardemu scenario report. Traces show what passed between the parties, as a
TRAFFIC-level log would.</footer>
</body></html>
"""


def html_report(result: RunResult) -> str:
    """The run as one self-contained HTML page (inline CSS and SVG, no script)."""
    return _page(result.title, _section(result))


def html_report_many(results: list[RunResult], title: str) -> str:
    """Several runs (`cardemu demo`) as one self-contained HTML page, an index then each run."""
    rows = "".join(
        f'<tr class="{"ok" if r.ok else "failed"}"><td><a href="#{_e(r.scenario)}">'
        f"{_e(r.scenario)}</a></td><td>{_e(r.title)}</td>"
        f"<td>{'pass' if r.ok else 'FAIL'}</td><td>{len(r.steps)}</td>"
        f"<td>{r.elapsed:.2f} s</td></tr>"
        for r in results
    )
    index = (
        '<table class="index"><tr><th>system</th><th>what</th><th>result</th>'
        f"<th>steps</th><th>time</th></tr>{rows}</table>"
    )
    sections = "".join(
        f'<section id="{_e(r.scenario)}"><h2>{_e(r.title)}</h2>'
        f"{_section(r, anchor=r.scenario + '-')}</section>"
        for r in results
    )
    return _page(title, index + sections)


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.6em}h3{font-size:1.05em;margin-top:1.2em}
table.index{border-collapse:collapse}table.index td,table.index th{padding:.2em .8em;
text-align:left;border-bottom:1px solid #ddd}table.index tr.failed td{color:#c0392b}
code,pre{font-family:ui-monospace,monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-all;background:#f6f6f6;padding:.5em;margin:.2em 0}
.status.ok b{color:#1e7e34}.status.failed b,.error{color:#c0392b}
.verdicts li.ok{color:#1e7e34}.verdicts li.failed{color:#c0392b;font-weight:bold}
.detail,.ms{color:#777;font-size:.9em}
.diagram{overflow-x:auto;border:1px solid #ddd;padding:.5em}
svg text{font-size:12px;fill:#222}
svg .party rect{fill:#eef3fb;stroke:#4a6fa5}
svg .party rect.party-card{fill:#fdf3e3;stroke:#b7791f}
svg .party rect.party-server{fill:#eaf6ee;stroke:#2f855a}
svg .party-name{font-weight:bold;font-size:13px}svg .party-kind{fill:#666;font-size:11px}
svg .lifeline{stroke:#999;stroke-dasharray:4 4}
svg .step line,svg .step path{stroke:#333;stroke-width:1.4}
svg .step line.reply{stroke:#888;stroke-dasharray:3 3;stroke-width:1}
svg .step.failed line,svg .step.failed path{stroke:#c0392b}
svg .step.failed text{fill:#c0392b;font-weight:bold}
details.step{border-left:4px solid #4a6fa5;margin:.4em 0;padding:.2em .6em}
details.step.failed{border-left-color:#c0392b}
details.step>summary{cursor:pointer}.num{display:inline-block;min-width:2em;font-weight:bold}
.meaning{color:#555;margin:.2em 0 .4em 2em}
details.msg{margin:.1em 0 .1em 2em}.kind{font-size:.8em;color:#fff;background:#666;
padding:0 .3em;border-radius:3px}.msg-http .kind{background:#2f855a}
.msg-apdu .kind{background:#b7791f}.fault{color:#c0392b;font-weight:bold}
footer{margin-top:2em;color:#888;font-size:.85em}
"""
