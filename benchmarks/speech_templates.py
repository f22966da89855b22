"""Connected speech's classical baseline on the built-in corpora: word templates + one-pass DTW.

Fits the baseline exactly as ``rnnkit train speech --data digits-ctc`` (or ``phrases``) does on the same split
(templates from the training part, the word insertion penalty on the validation part), without training the
network, and prints the word error rate of the seen-voice and unseen-voice test parts, by voice group, with the
time it took. The networks' numbers to set beside them are in docs/speech.md.

    PYTHONPATH=src .venv/bin/python benchmarks/speech_templates.py digits-ctc phrases [--per-word 4]
"""

from __future__ import annotations

import argparse
import json

from rnnkit._machine import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+", choices=("digits-ctc", "phrases"))
    ap.add_argument("--train-size", type=int, default=3000)
    ap.add_argument("--per-word", type=int, default=4, help="templates per word")
    ap.add_argument("--iterations", type=int, default=2, help="re-cuts by forced alignment")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from rnnkit.apps.speech.report import error_rates, voice_table
    from rnnkit.apps.speech.synth import load_corpus
    from rnnkit.apps.speech.templates import template_baseline

    print(machine_line())
    for data in args.data:
        corpus = load_corpus(data, args.train_size, 0, say=lambda *_: None)
        tests = {p: corpus.indices(p) for p in ("test", "unseen")}
        rec, hyps = template_baseline(
            corpus.features,
            corpus.texts,
            corpus.indices("train"),
            corpus.indices("val"),
            tests,
            seed=args.seed,
            per_word=args.per_word,
            iterations=args.iterations,
        )
        print(f"\n{data}: {json.dumps(rec.info)}")
        for part, ix in tests.items():
            refs = [corpus.texts[i] for i in ix]
            s = error_rates(refs, hyps[part])
            print(
                f"  {part:<7} {len(ix):>4} utterances: WER {s['wer']:.4f}  CER {s['cer']:.4f}  exact {s['exact']:.3f}"
            )
            for group, g in voice_table(refs, hyps[part], [corpus.voices[i] for i in ix]).items():
                print(f"    {group:<24} {g['count']:>4}: WER {g['wer']:.3f}")


if __name__ == "__main__":
    main()
