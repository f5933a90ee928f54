"""`thresher inspect`: a run directory's funnel, languages, sources, lengths and shards."""

from __future__ import annotations

import json
import os
import sys

NAME = "inspect"
HELP = "report on a run directory: funnel, shards, languages, lengths"


def add_arguments(p) -> None:
    p.add_argument("dir")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report with plots")
    p.add_argument("--compare", metavar="DIR_B",
                   help="compare with another run: funnel, drops per reason, documents kept by one and not the other")
    p.add_argument("--verify", action="store_true",
                   help="check shard checksums, manifest, dtype and token ids; exit 1 on any mismatch")


def main(args, rest) -> int:
    from thresher.pipeline.tools.inspection import build_report, render_console, render_html, verify_run

    details = bool(args.html or args.json)  # read from the rows: the console report does without
    if args.compare:
        from thresher.pipeline.tools.report import compare, render_compare_console

        a, b = build_report(args.dir, details=False), build_report(args.compare, details=False)
        report = {"compare": compare(args.dir, args.compare, a, b)}
        text = render_compare_console(report["compare"])
    else:
        report = build_report(args.dir, details)
        text = None
    problems = verify_run(args.dir) if args.verify else []
    if args.verify:
        report["verify"] = {"ok": not problems, "problems": problems}
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(render_html(report))
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.html:  # the report went to the file: say where, not the text again
        print(f"thresher inspect: wrote {os.path.abspath(args.html)} ({os.path.getsize(args.html) / 1024:,.0f} KB; "
              "one file, opens without a network)")
    else:
        print(text if text is not None else render_console(report))
    for p in problems:
        print(f"thresher inspect: verify: {p}", file=sys.stderr)
    return 1 if problems else 0
