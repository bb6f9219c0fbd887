"""The figures of a load run, from Locust's statistics: what `cardemu load` prints at the end.

- downloads/s: downloads that completed (installed, result delivered, and
  enabled / notified when asked) per second of the run;
- per ES9+ function (SGP.22 §5.6): requests, failures and the 50th, 95th and
  99th percentile of the answer time, as Locust keeps them (its histogram
  rounds times over 100 ms to two significant digits);
- failures by SGP.22 status code (§6.5.1.4, "subject/reason") and function,
  with what the code means where `host.es9plus` names it.

Duck-typed on Locust's `RequestStats` (`entries`, `errors`): this module does not
import Locust.
"""

from __future__ import annotations

from typing import Any

import host.es9plus as es9plus

__all__ = ["DOWNLOAD", "ES9", "LPA", "code_meaning", "format_summary", "summarise"]

ES9 = "ES9+"
LPA = "LPA"
DOWNLOAD = "download"
_PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))
_WORDS = {
    "id": "ID",
    "eid": "EID",
    "smdp": "SM-DP+",
    "ci": "CI",
    "euicc": "eUICC",
    "eum": "EUM",
    "svn": "SVN",
    "oid": "OID",
    "cert": "certificate",
}


def _meanings() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in es9plus.__all__:
        if name.startswith("SC_"):
            subject, reason = getattr(es9plus, name)
            words = [_WORDS.get(w, w) for w in name[3:].lower().split("_")]
            out.setdefault(f"{subject}/{reason}", " ".join(words))
    return out


_MEANINGS = _meanings()


def code_meaning(code: str) -> str:
    """What an SGP.22 "subject/reason" status code means ("" when not one we name)."""
    return _MEANINGS.get(code, "")


def _entry(e: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requests": int(e.num_requests),
        "failures": int(e.num_failures),
    }
    for key, p in _PERCENTILES:
        out[f"{key}Ms"] = float(e.get_response_time_percentile(p)) if e.num_requests else None
    return out


def summarise(
    stats: Any, *, seconds: float, users: int, workers: int, target: str
) -> dict[str, Any]:
    """The run's figures as JSON-ready values (stable keys).

    Args:
        stats: Locust's `RequestStats` of the run (on the master when distributed).
        seconds: the run's length, from the first user started to the stop.
        users: the users asked for.
        workers: Locust worker processes (0: a local run).
        target: the SM-DP+ address.
    """
    functions = []
    download: dict[str, Any] = {"requests": 0, "failures": 0, "p50Ms": None}
    download.update({f"{k}Ms": None for k, _ in _PERCENTILES})
    for (name, method), e in sorted(stats.entries.items()):
        if method == ES9:
            functions.append({"function": name, **_entry(e)})
        elif method == LPA and name == DOWNLOAD:
            download = _entry(e)
    failures = []
    for err in stats.errors.values():
        if err.method != ES9:
            continue
        code = str(err.error)
        failures.append(
            {
                "function": err.name,
                "code": code,
                "meaning": code_meaning(code),
                "count": int(err.occurrences),
            }
        )
    failures.sort(key=lambda f: (-f["count"], f["function"], f["code"]))
    others = [
        {"reason": str(err.error), "count": int(err.occurrences)}
        for err in stats.errors.values()
        if err.method == LPA
    ]
    ok = download["requests"] - download["failures"]
    return {
        "target": target,
        "users": users,
        "workers": workers,
        "seconds": round(seconds, 3),
        "downloads": {
            "completed": ok,
            "failed": download["failures"],
            "perSecond": round(ok / seconds, 3) if seconds > 0 else 0.0,
            **{k: v for k, v in download.items() if k.endswith("Ms")},
        },
        "es9": functions,
        "failures": failures,
        "downloadFailures": sorted(others, key=lambda o: -o["count"]),
    }


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def format_summary(s: dict[str, Any]) -> str:
    """The summary as the table `cardemu load` prints."""
    d = s["downloads"]
    where = f"{s['workers']} Locust workers" if s["workers"] else "one process"
    lines = [
        f"{s['target']}: {s['users']} eUICCs ({where}), {s['seconds']:.1f} s",
        f"downloads: {d['completed']} completed, {d['failed']} failed, "
        f"{d['perSecond']:.2f}/s; whole download p50 {_ms(d['p50Ms'])} ms, "
        f"p95 {_ms(d['p95Ms'])} ms, p99 {_ms(d['p99Ms'])} ms",
        "",
        f"{'ES9+ function':<24} {'requests':>8} {'failed':>6} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7}",
    ]
    for f in s["es9"]:
        lines.append(
            f"{f['function']:<24} {f['requests']:>8} {f['failures']:>6} {_ms(f['p50Ms']):>7} "
            f"{_ms(f['p95Ms']):>7} {_ms(f['p99Ms']):>7}"
        )
    if s["failures"]:
        lines += ["", f"{'failures (SGP.22 code)':<24} {'function':<24} {'count':>6}  meaning"]
        for f in s["failures"]:
            lines.append(
                f"{f['code']:<24} {f['function']:<24} {f['count']:>6}  {f['meaning']}".rstrip()
            )
    if s["downloadFailures"]:
        lines += ["", "downloads failed because:"]
        for o in s["downloadFailures"]:
            lines.append(f"  {o['count']:>6}  {o['reason']}")
    return "\n".join(lines)
