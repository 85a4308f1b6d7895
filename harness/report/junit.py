"""junit.xml for CI: one test case per hypothesis check and guardrail, and one for the run.

Checks come from summary.json's ``hypothesis`` (and ``guardrails`` when the controller
keeps them apart): dicts with a ``name``, a pass flag (``passed``, ``ok`` or ``held``,
or ``status`` in pass/held/ok), and optionally ``kind``, ``detail``/``message``,
``value``, ``expected``. The ``run`` case fails when the run was aborted or its
rollback could not be verified, so CI goes red even with every check passing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Mapping

_PASS_WORDS = {"pass", "passed", "held", "ok", "true"}


def check_passed(check: Mapping[str, Any]) -> bool:
    for key in ("passed", "ok", "held"):
        if key in check:
            return bool(check[key])
    return str(check.get("status", "")).lower() in _PASS_WORDS


def check_detail(check: Mapping[str, Any]) -> str:
    parts = [str(check[k]) for k in ("detail", "message", "why") if check.get(k)]
    if "value" in check:
        parts.append(f"value={check['value']}")
    if "expected" in check:
        parts.append(f"expected={check['expected']}")
    return "; ".join(parts)


def checks_of(summary: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(kind, check) pairs from the summary, in order."""
    out = []
    for key, default_kind in (("hypothesis", "hypothesis"), ("guardrails", "guardrail")):
        for check in summary.get(key) or []:
            if isinstance(check, Mapping):
                out.append((str(check.get("kind") or default_kind), check))
    return out


def build_junit(summary: Mapping[str, Any]) -> bytes:
    """The junit.xml document for ``summary`` (UTF-8 bytes with declaration)."""
    experiment = str(summary.get("experiment") or "experiment")
    suite = ET.Element("testsuite", name=f"ccharness.{experiment}")
    failures = 0
    for kind, check in checks_of(summary):
        case = ET.SubElement(suite, "testcase", classname=f"ccharness.{kind}",
                             name=str(check.get("name") or "unnamed check"))
        detail = check_detail(check)
        if not check_passed(check):
            failures += 1
            ET.SubElement(case, "failure", message=detail or "check failed", type=kind).text = detail
        elif detail:
            ET.SubElement(case, "system-out").text = detail
    failures += _run_case(suite, summary)
    tests = len(suite.findall("testcase"))
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    root = ET.Element("testsuites", tests=str(tests), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _run_case(suite: ET.Element, summary: Mapping[str, Any]) -> int:
    verdict = summary.get("verdict")
    case = ET.SubElement(suite, "testcase", classname="ccharness.run", name="run completed and rolled back")
    if verdict in ("aborted", "rollback_failed") or verdict is None:
        ET.SubElement(case, "failure", type="run",
                      message=f"verdict: {verdict or 'none recorded'}").text = str(verdict)
        return 1
    return 0
