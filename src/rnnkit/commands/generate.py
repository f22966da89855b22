"""``rnnkit generate RUN [PROMPT ...]``: sample text from a saved text-generation run.

Prompts come from the arguments, else from ``--file`` (one prompt per line; ``-`` = stdin), else from piped
stdin; with none the text starts at a new line. Sampling: ``--temperature`` (0 = greedy), ``--top-k``, ``--top-p``, ``--length``,
``--num-samples``, ``--seed``. Example::

    rnnkit generate runs/austen "It is a truth universally acknowledged" --temperature 0.7 --top-p 0.9
"""

from __future__ import annotations

import argparse
import json

from rnnkit.apps.textgen.config import GenerateConfig
from rnnkit.config import add_config_arguments, config_from_args

NAME = "generate"
HELP = "generate text from a saved text-generation run (prompt, temperature, top-k, top-p)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a textgen run directory (e.g. runs/austen)")
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="text to continue (default: a new line)")
    p.add_argument("--file", metavar="FILE", help="read prompts from FILE, one per line; - = stdin")
    p.add_argument("--config", metavar="TOML", help="read the sampling settings from a TOML file")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_config_arguments(p, GenerateConfig)


def _piped() -> list[str]:
    """Prompts piped on stdin, one per line; none (a terminal, or nothing piped): start at a new line."""
    import sys

    try:
        text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    except (OSError, ValueError, UnicodeDecodeError):
        text = ""
    return [line.strip() for line in text.splitlines() if line.strip()] or [""]


def run(args: argparse.Namespace) -> int:
    from rnnkit.apps._common import read_inputs
    from rnnkit.apps.textgen import TextGenerator

    gen = config_from_args(GenerateConfig, args, args.config)
    model = TextGenerator(args.run)
    prompts = read_inputs(args.prompts, args.file, "prompts") if (args.prompts or args.file) else _piped()
    results = [{"prompt": p, "samples": model.generate(p, gen)} for p in prompts]
    if args.json:
        print(json.dumps({"settings": vars(gen), "results": results}, indent=1, ensure_ascii=False))
        return 0
    first = True
    for r in results:
        for s in r["samples"]:
            if not first:
                print("\n----")
            first = False
            print(r["prompt"] + s)
    return 0
