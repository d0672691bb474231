"""Run checks and print them as a table (or JSON)."""

from __future__ import annotations

import json

from rebuilt.doctor.checks import Check, Context

MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL"}


def run(ctx: Context, checks) -> list[Check]:
    rows: list[Check] = []
    for fn in checks:
        rows += fn(ctx)
    return rows


def table(rows: list[Check]) -> str:
    w = max((len(r.name) for r in rows), default=5)
    lines = [f"{'check':<{w}}  {'status':<6}  found / what to do"]
    for r in rows:
        lines.append(f"{r.name:<{w}}  {MARK[r.status]:<6}  {r.found}")
        if r.todo:
            lines.append(f"{'':<{w}}  {'':<6}  -> {r.todo}")
    fails = sum(r.status == "fail" for r in rows)
    warns = sum(r.status == "warn" for r in rows)
    lines.append(f"{fails} failed, {warns} warnings, {len(rows) - fails - warns} ok")
    return "\n".join(lines)


def as_json(rows: list[Check]) -> str:
    return json.dumps([r.__dict__ for r in rows], indent=2)
