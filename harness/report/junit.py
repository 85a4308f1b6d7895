"""junit.xml for CI: one test case per hypothesis check, guardrail and convergence outcome,
and one for the run itself.

Checks come from summary.json (harness/control/summary.py): ``hypothesis`` (dicts of
``name, phase, ok, value, limit, bound, detail``; ``ok`` None means not measured and
becomes a skipped case), ``guardrails`` when present (same shape), and ``convergence``
/ ``recovery`` outcomes (``expect, converged, evidence``). Other pass flags (``passed``,
``held``, ``status``) are accepted too. The ``run`` case fails when the run was aborted,
its rollback could not be verified, or no verdict was recorded, so CI goes red even
when every check passed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Mapping

_PASS_WORDS = {"pass", "passed", "held", "ok", "true"}


def check_passed(check: Mapping[str, Any]) -> bool | None:
    """True, False, or None when the check was not measured."""
    for key in ("ok", "passed", "held", "converged"):
        if key in check:
            return None if check[key] is None else bool(check[key])
    return str(check.get("status", "")).lower() in _PASS_WORDS


def check_name(check: Mapping[str, Any]) -> str:
    """``name (phase)`` for checks, ``expect (step N)`` for convergence outcomes."""
    name = str(check.get("name") or check.get("expect") or "unnamed check")
    if check.get("phase"):
        return f"{name} ({check['phase']})"
    if check.get("step") is not None:
        return f"{name} (step {check['step']})"
    return name


def check_detail(check: Mapping[str, Any]) -> str:
    parts = []
    if check.get("value") is not None or check.get("limit") is not None:
        value = check.get("value")
        text = f"value={'n/a' if value is None else _num(value)}"
        if check.get("limit") is not None:
            text += f" {check.get('bound') or 'limit'} {_num(check['limit'])}"
        parts.append(text)
    if check.get("expected") is not None:
        parts.append(f"expected={check['expected']}")
    parts += [str(check[k]) for k in ("detail", "message", "evidence", "why") if check.get(k)]
    return "; ".join(parts)


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def checks_of(summary: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(kind, check) pairs from the summary, in order."""
    out = []
    for key, default_kind in (("hypothesis", "hypothesis"), ("guardrails", "guardrail"),
                              ("convergence", "convergence"), ("recovery", "recovery")):
        for check in summary.get(key) or []:
            if isinstance(check, Mapping):
                out.append((str(check.get("kind") or default_kind), check))
    return out


def build_junit(summary: Mapping[str, Any]) -> bytes:
    """The junit.xml document for ``summary`` (UTF-8 bytes with declaration)."""
    experiment = str(summary.get("experiment") or "experiment")
    suite = ET.Element("testsuite", name=f"ccharness.{experiment}")
    failures = skipped = 0
    seen: dict[str, int] = {}
    for kind, check in checks_of(summary):
        name = check_name(check)
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:  # CI tools merge cases of the same name: keep each one
            name = f"{name} #{seen[name]}"
        case = ET.SubElement(suite, "testcase", classname=f"ccharness.{kind}", name=name)
        detail, passed = check_detail(check), check_passed(check)
        if passed is False:
            failures += 1
            ET.SubElement(case, "failure", message=detail or "check failed", type=kind).text = detail
        elif passed is None:
            skipped += 1
            ET.SubElement(case, "skipped", message=detail or "not measured")
        elif detail:
            ET.SubElement(case, "system-out").text = detail
    failures += _run_case(suite, summary)
    tests = len(suite.findall("testcase"))
    suite.attrib.update(tests=str(tests), failures=str(failures), errors="0", skipped=str(skipped))
    root = ET.Element("testsuites", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _run_case(suite: ET.Element, summary: Mapping[str, Any]) -> int:
    verdict = summary.get("verdict")
    case = ET.SubElement(suite, "testcase", classname="ccharness.run",
                         name="run completed and rolled back")
    if verdict in ("aborted", "rollback_failed") or verdict is None:
        reason = summary.get("reason") or ""
        ET.SubElement(case, "failure", type="run",
                      message=f"verdict: {verdict or 'none recorded'}").text = f"{verdict} {reason}".strip()
        return 1
    return 0
