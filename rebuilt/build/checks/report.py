"""Run checks and print them as a table (or JSON)."""

from __future__ import annotations

import json

from rebuilt.build.checks.model import Check, Context
from rebuilt.core.secret import redact
from rebuilt.errors import RebuiltError

MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def run(ctx: Context, checks) -> list[Check]:
    """Every check's rows; a check that breaks becomes a failed row instead of stopping the others."""
    rows: list[Check] = []
    for fn in checks:
        try:
            rows += fn(ctx)
        except RebuiltError as exc:
            rows.append(Check(fn.__name__.replace("_", " "), "fail", str(exc), exc.hint or ""))
        except Exception as exc:  # noqa: BLE001 - a doctor reports what it could not check, and goes on
            rows.append(Check(fn.__name__.replace("_", " "), "fail", f"the check itself failed: "
                              f"{type(exc).__name__}: {exc}", "please report this"))
    for r in rows:  # nothing a check found may print a credential
        r.found, r.todo = redact(r.found), redact(r.todo)
    return rows


def summary(rows: list[Check]) -> str:
    fails = sum(r.status == "fail" for r in rows)
    warns = sum(r.status == "warn" for r in rows)
    return f"{fails} failed, {warns} warnings, {len(rows) - fails - warns} ok"


def table(rows: list[Check]) -> str:
    w = max((len(r.name) for r in rows), default=5)
    lines = [f"{'check':<{w}}  {'status':<6}  found / -> what to do"]
    for r in rows:
        lines.append(f"{r.name:<{w}}  {MARK[r.status]:<6}  {r.found}")
        if r.todo:
            lines.append(f"{'':<{w}}  {'':<6}  -> {r.todo}")
    lines.append(summary(rows))
    return "\n".join(lines)


def as_json(rows: list[Check]) -> str:
    return json.dumps([{"name": r.name, "status": r.status, "found": r.found, "todo": r.todo} for r in rows],
                      indent=2)
