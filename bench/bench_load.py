"""Definition loading: is parse + schema + lint + compile cheap enough for every CLI call?

Every `caseflow` command loads the catalog (org.yaml, calendars.yaml and every
workflow file) before doing anything. This measures that work beside the
least any YAML-configured tool pays for the same text: `yaml.safe_load` of the
very same bytes, measured in the same run and interleaved with it (the order
rotates every round; a figure is the median over rounds, a ratio the median of
per-round ratios), so a noisy neighbour spoils a few rounds, not one side.

Rows:
  * the shipped workflows, in memory: parse (safe YAML with checks) → schema →
    lint → compile (CEL type-checking), each phase and the total;
  * a generated 300-state workflow (900 transitions with guards and effects,
    30 SLAs), the same phases;
  * for scale, libyaml's loader (`yaml.CSafeLoader`, which caseflow's parser
    uses for clean files) on the same text, without any of our checks;
  * what a CLI call pays: `Catalog.load` of the shipped directory from disk
    (org, calendars with their holiday tables) and compiling the one workflow
    it needs; and what `caseflow validate` pays: every workflow and the links.

    python bench/bench_load.py            # full
    python bench/bench_load.py --quick    # a few seconds

With CASEFLOW_BENCH_JSON=1 each row is also printed as one JSON line for
bench/run.py. Ratios are times (caseflow ÷ safe_load): lower is better.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from caseflow import catalog as catalog_module  # noqa: E402
from caseflow.catalog import SHIPPED, SPECIAL, Catalog  # noqa: E402
from caseflow.definition import lint  # noqa: E402
from caseflow.definition.compile import _Compiler, load_org  # noqa: E402
from caseflow.definition.schema import check_schema  # noqa: E402
from caseflow.definition.source import parse_source  # noqa: E402
from caseflow.sla.calendar import load_calendars  # noqa: E402


def generated_workflow(n_states: int = 300) -> str:
    """A big but realistic file: a long approval chain with branches, guards, effects and SLAs."""
    out = ["# yaml-language-server: $schema=../schemas/workflow.schema.json",
           "workflow: generated", "label_zh: 生成的长流程", "timezone: Asia/Shanghai", "calendar: cn_office",
           "constants:", "  step_fee_yuan: 10", "  limits: {normal: 1000, major: 5000}",
           "data:", "  type: object", "  required: [form_no, amount, severity]", "  properties:",
           "    form_no: {type: string, label_zh: 表单号}",
           "    amount: {type: string, format: money, label_zh: 金额}",
           "    fee: {type: string, format: money, label_zh: 费用}",
           "    severity: {type: string, enum: [normal, major], label_zh: 严重程度}",
           "    steps: {type: integer, label_zh: 步数}",
           "    approved: {type: boolean, label_zh: 已批准}",
           "    note: {type: string, label_zh: 备注}",
           "    received_at: {type: string, format: date-time, label_zh: 受理时间}",
           "states:"]
    for i in range(n_states - 2):
        out.append(f"  s{i:03d}: {{label_zh: 第{i}步{', initial: true' if i == 0 else ''}}}")
    out += ["  done: {label_zh: 完成, final: true}", "  cancelled: {label_zh: 取消, final: true}", "transitions:"]
    last = n_states - 3
    for i in range(n_states - 2):
        nxt = f"s{i + 1:03d}" if i < last else "done"
        out += [f"  - event: next_{i}", f"    label_zh: 第{i}步完成", f"    from: s{i:03d}", f"    to: {nxt}",
                "    roles: [cs_agent, cs_supervisor]", "    accepts: [note]",
                "    when:",
                "      - expr: \"amount <= yuan(limits[severity])\"", "        message: 金额超过限额",
                f"      - \"steps >= {i} || !is_set('steps')\"",
                "    set:", "      steps: \"is_set('steps') ? steps + 1 : 1\"",
                "      fee: \"yuan(step_fee_yuan) * (is_set('steps') ? steps + 1 : 1)\""]
        if i + 2 <= last:
            out += [f"  - event: skip_{i}", f"    label_zh: 跳过第{i + 1}步", f"    from: s{i:03d}",
                    f"    to: s{i + 2:03d}", "    roles: [cs_manager]",
                    "    when: \"severity == 'normal' && amount < yuan(100)\"",
                    "    set: {approved: \"true\"}"]
        out += [f"  - event: cancel_{i}", "    label_zh: 取消", f"    from: s{i:03d}", "    to: cancelled",
                "    roles: [cs_manager]", "    requires: [note]"]
    out.append("slas:")
    for i in range(0, n_states - 2, 10):
        out += [f"  - name: step_{i}_2wh", f"    label_zh: 第{i}步2个工作小时", f"    start: {{enter: s{i:03d}}}",
                f"    stop: {{leave: s{i:03d}}}", "    within: 2 working hours", "    warn_at: [\"80%\"]",
                "    on_breach: [{notify: cs_supervisor, message: 超时}]"]
    return "\n".join(out) + "\n"


class _Inputs:
    def __init__(self) -> None:
        self.org = load_org(SHIPPED / "org.yaml")
        self.calendars = set(load_calendars(SHIPPED / "calendars.yaml"))
        self.shipped = {p.name: p.read_bytes() for p in sorted(SHIPPED.glob("*.yaml")) if p.name not in SPECIAL}
        self.generated = {"generated.yaml": generated_workflow().encode("utf-8")}


def _phases(inputs: _Inputs, files: dict[str, bytes]) -> dict[str, Callable[[], Any]]:
    """One callable per phase; each phase starts from the previous phase's (precomputed) output."""
    sources = {name: parse_source(raw, name) for name, raw in files.items()}

    def parse() -> None:
        for name, raw in files.items():
            parse_source(raw, name)

    def schema() -> None:
        for src in sources.values():
            check_schema(src)

    def lint_() -> None:
        for src in sources.values():
            assert not lint.check(src, inputs.org, inputs.calendars)

    def compile_() -> None:
        for src in sources.values():
            c = _Compiler(src)
            c.build()
            assert not c.errors, c.errors[:1]

    def total() -> None:
        for name, raw in files.items():
            src = parse_source(raw, name)
            check_schema(src)
            assert not lint.check(src, inputs.org, inputs.calendars)
            _Compiler(src).build()

    return {"parse + safety checks": parse, "JSON Schema": schema, "lint": lint_, "compile (CEL)": compile_,
            "total": total}


def _interleaved(subjects: dict[str, Callable[[], Any]], baseline: Callable[[], Any], rounds: int,
                 min_time: float) -> tuple[dict[str, float], float, dict[str, float]]:
    """Median seconds per call of each subject and of the baseline, and median per-round ratios."""
    def per_call(fn: Callable[[], Any]) -> float:
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                return elapsed / n

    for fn in [*subjects.values(), baseline]:      # warm up: imports, lru caches, CEL environment
        fn()
    names = list(subjects)
    times: dict[str, list[float]] = {n: [] for n in names}
    base_times: list[float] = []
    ratios: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        base = per_call(baseline)
        round_times = {n: per_call(subjects[n]) for n in order}
        base = (base + per_call(baseline)) / 2       # baseline before and after the subjects
        base_times.append(base)
        for n, t in round_times.items():
            times[n].append(t)
            ratios[n].append(t / base)
    return ({n: statistics.median(v) for n, v in times.items()}, statistics.median(base_times),
            {n: statistics.median(v) for n, v in ratios.items()})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and shorter timing windows")
    args = ap.parse_args(argv)
    rounds, min_time = (3, 0.05) if args.quick else (9, 0.3)
    inputs = _Inputs()
    rows: list[dict[str, Any]] = []

    for label, files in (("shipped workflows", inputs.shipped), ("generated 300-state workflow", inputs.generated)):
        texts = [raw.decode("utf-8") for raw in files.values()]

        def safe_load(texts: list[str] = texts) -> None:
            for t in texts:
                yaml.safe_load(t)

        size = sum(len(raw) for raw in files.values())
        subjects = _phases(inputs, files)
        if getattr(yaml, "__with_libyaml__", False):
            def c_load(texts: list[str] = texts) -> None:
                for t in texts:
                    yaml.load(t, Loader=yaml.CSafeLoader)
            subjects["(for scale) yaml.load with libyaml, no checks"] = c_load
        med, base, ratio = _interleaved(subjects, safe_load, rounds, min_time)
        what = f"{len(files)} files, {size / 1024:.0f} KB" if len(files) > 1 else f"{size / 1024:.0f} KB"
        for phase, seconds in med.items():
            rows.append({"group": "definition load", "name": f"{label} ({what}): {phase}",
                         "value": seconds * 1000, "unit": "ms", "baseline": "yaml.safe_load, same text",
                         "baseline_value": base * 1000, "baseline_unit": "ms", "ratio": ratio[phase],
                         "note": "time ratio, lower is better"})

    # What a CLI call pays: org + calendars, then the one workflow it needs (the catalog compiles
    # lazily); and what `caseflow validate` pays: all of them plus the cross-file links. The
    # per-process compile cache is emptied each time: every CLI call is a new process.
    def fresh() -> Catalog:
        catalog_module._COMPILED.clear()
        return Catalog.load(SHIPPED)

    def texts_of(names: list[str]) -> list[str]:
        return [(SHIPPED / n).read_text(encoding="utf-8") for n in names]

    one = texts_of(["org.yaml", "calendars.yaml", "complaint.yaml"])
    every = texts_of([p.name for p in sorted(SHIPPED.glob("*.yaml"))])
    for name, subject, texts in (
            ("CLI call: Catalog.load(shipped) + compile complaint", lambda: fresh().get("complaint"), one),
            (f"caseflow validate: Catalog.load(shipped) + check_all ({len(inputs.shipped)} workflows, links)",
             lambda: fresh().check_all(), every)):
        def safe_load_these(texts: list[str] = texts) -> None:
            for t in texts:
                yaml.safe_load(t)
        med, base, ratio = _interleaved({name: subject}, safe_load_these, rounds, min_time)
        rows.append({"group": "definition load", "name": name, "value": med[name] * 1000, "unit": "ms",
                     "baseline": "yaml.safe_load of the same files", "baseline_value": base * 1000,
                     "baseline_unit": "ms", "ratio": ratio[name], "note": "time ratio, lower is better"})

    width = max(len(r["name"]) for r in rows)
    print(f"{'what':<{width}}  {'caseflow':>10}  {'safe_load':>10}  {'ratio':>6}")
    print(f"{'-' * width}  {'-' * 10}  {'-' * 10}  {'-' * 6}")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['value']:>8.2f}ms  {r['baseline_value']:>8.2f}ms  {r['ratio']:>5.1f}×")
    print(f"\n{'quick' if args.quick else 'full'} mode: median of {rounds} interleaved rounds; "
          "ratio = caseflow time ÷ yaml.safe_load time of the same text (lower is better)")
    if os.environ.get("CASEFLOW_BENCH_JSON"):
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
