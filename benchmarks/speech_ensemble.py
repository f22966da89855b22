"""Connected-speech runs trained apart, averaged after the fact: what ``--ensemble`` would have given them.

Loads each run (``rnnkit train speech --data digits-ctc | phrases``, all on the same built-in corpus and with
the same architecture), computes every run's per-step log-probabilities on the seen-voice and unseen-voice
test parts, and prints a markdown table: each run's WER alone with the lexicon + LM decoder, their mean,
and the WER of the mean of their per-step probabilities (``rnnkit.apps.speech.model.average_networks``,
decoded with the first run's lexicon, LM and weights). ``rnnkit train speech --ensemble N --seed S`` trains
exactly the networks of N single runs with seeds S .. S+N-1, so the table shows what it would score.

    PYTHONPATH=src python benchmarks/speech_ensemble.py runs/phr-s0 runs/phr-s1 runs/phr-s2 runs/phr-s3
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    import torch

    from rnnkit.apps.speech import load
    from rnnkit.apps.speech.model import average_networks, transcribe, utterance_log_probs
    from rnnkit.apps.speech.report import error_rates
    from rnnkit.apps.speech.synth import CTC_TASKS, load_corpus

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders of connected-speech runs on one built-in task")
    args = ap.parse_args()
    torch.set_num_threads(1)
    runs = [load(r) for r in args.runs]
    first = runs[0]
    c = first.config
    if c.data not in CTC_TASKS or any(r.config.data != c.data for r in runs):
        raise SystemExit(f"expected runs on one built-in task ({', '.join(CTC_TASKS)})")
    corpus = load_corpus(c.data, c.train_size, c.split_seed, say=lambda *_: None)
    lexicon, lm = first.word_models()
    print("| part | WER alone (lexicon + LM) | their mean | ensemble |\n|---|---|---|---|")
    for part in ("test", "unseen"):
        ix = corpus.indices(part)
        refs = [corpus.texts[i] for i in ix]
        each = []
        for r in runs:
            feats = [(corpus.features[i] - r.mean) / r.std for i in ix]
            each.append(utterance_log_probs(r.models, feats))

        def wer(log_probs, refs=refs) -> float:
            hyps = transcribe(log_probs, first.alphabet, c.lexicon_beam, lexicon, lm, c)
            return error_rates(refs, hyps)["wer"]

        alone = [wer(lp) for lp in each]
        mean = average_networks(each)
        print(
            f"| {part} ({len(ix)}) | {', '.join(f'{w:.3f}' for w in alone)} | {np.mean(alone):.3f} | {wer(mean):.3f} |"
        )


if __name__ == "__main__":
    main()
