"""``rnnkit generate RUN [PROMPT ...]``: sample text from a saved text-generation run, or tunes from a music run.

A music run (``rnnkit train music``) writes ABC, MIDI and a piano-roll PNG per tune into ``--out``::

    rnnkit generate runs/music --meter 6/8 --key Dmix --num-samples 5 --out tunes

Prompts come from the arguments, else from ``--file`` (one prompt per line; ``-`` = stdin), else from piped
stdin; with none the text starts at a new line. Sampling: ``--temperature`` (0 = greedy), ``--top-k``, ``--top-p``, ``--length``,
``--num-samples``, ``--seed``. Example::

    rnnkit generate runs/austen "It is a truth universally acknowledged" --temperature 0.7 --top-p 0.9
"""

from __future__ import annotations

import argparse
import json

from rnnkit._errors import RnnkitError
from rnnkit.config import add_config_arguments, config_from_args

NAME = "generate"
HELP = "generate text from a textgen run, or tunes (ABC, MIDI, PNG) from a music run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", metavar="RUN", help="a textgen run directory (e.g. runs/austen)")
    p.add_argument("prompts", nargs="*", metavar="PROMPT", help="text to continue (default: a new line)")
    p.add_argument("--file", metavar="FILE", help="read prompts from FILE, one per line; - = stdin")
    p.add_argument("--config", metavar="TOML", help="read the sampling settings from a TOML file")
    p.add_argument("--json", action="store_true", help="print JSON")
    from rnnkit.apps.textgen.config import GenerateConfig

    add_config_arguments(p, GenerateConfig)
    music = p.add_argument_group("music runs")
    music.add_argument("--meter", help="meter of the tunes, e.g. 6/8 (default: drawn)")
    music.add_argument("--key", help="key of the tunes, e.g. Dmix, G, Ador (default: C, mode drawn)")
    music.add_argument(
        "--out", metavar="DIR", help="folder for the tunes' .abc/.mid/.png (default: tunes-RUN)"
    )


def _music(args: argparse.Namespace) -> int:
    """Tunes from a music run: the sampling flags the two kinds of run share, plus meter and key, checked
    like any other settings (defaults < ``--config`` TOML < flags)."""
    from pathlib import Path

    from rnnkit.apps.music.config import GenerateMusicConfig
    from rnnkit.apps.music.use import load

    if args.prompts or args.file:
        raise RnnkitError("a music run takes no prompts: use --meter and --key")
    if args.length is not None:
        raise RnnkitError(
            "--length: a music run writes whole tunes, each as long as the model makes it (at most max_length "
            "tokens, which --config can set); --length is for text-generation runs"
        )
    if args.temperature == 0:
        args.temperature = 1e-6  # greedy
    gen = config_from_args(GenerateMusicConfig, args, args.config)
    out = Path(args.out) if args.out else Path(f"tunes-{Path(args.run).resolve().name}")
    paths = load(args.run).generate(out, gen)
    if args.json:
        print(json.dumps({"files": [str(p) for p in paths]}, indent=1))
    else:
        for path in paths:
            print(path)
    return 0


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
    from rnnkit.apps.rundir import open_run
    from rnnkit.apps.textgen import TextGenerator

    if open_run(args.run)[1].get("app") == "music":
        return _music(args)
    from rnnkit.apps.textgen.config import GenerateConfig

    for flag in ("meter", "key", "out"):
        if getattr(args, flag) is not None:
            raise RnnkitError(f"--{flag}: for music runs; {args.run} is a text-generation run")
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
