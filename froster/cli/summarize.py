"""``froster summarize``: several runs' metrics as the paper's tables (markdown and CSV).

::

    froster summarize runs/b2n_ucf101_s1 runs/b2n_ucf101_s2 runs/b2n_ucf101_s3
    froster summarize froster=runs/b2n_* baseline=runs/vificlip_b2n_* --csv table.csv
"""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "summarize"
HELP = "several runs' metrics.json as the paper's tables (base/novel/HM, mean ± std over splits)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run folders, eval-* folders or metrics.json files; LABEL=PATH names the row")
    parser.add_argument("--csv", help="also write the tables as CSV to this file ('-' for standard output instead of markdown)")
    parser.add_argument("--markdown", help="also write the markdown to this file")


def run(args: argparse.Namespace) -> int:
    from froster.data.textfiles import DataFileError
    from froster.evaluation.summarize import load_run, summarize, to_csv, to_markdown

    summary = summarize([load_run(spec) for spec in args.runs])
    if not summary.rows():
        raise DataFileError("no top-1 accuracy in any of the given metrics files")
    markdown = to_markdown(summary)
    if args.csv == "-":
        print(to_csv(summary), end="")
    else:
        print(markdown, end="")
        if args.csv:
            Path(args.csv).write_text(to_csv(summary), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(markdown, encoding="utf-8")
    return 0
