"""Music in ``rnnkit demo``: an LSTM over folk-rnn tokens of folk tunes (and, at full scale, Bach chorale
melodies) vs Kneser-Ney n-grams; generated tunes checked by music21 and abc2midi."""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "folk tunes in ABC (PyPI music21 wheel)"


def fetch() -> str:
    from rnnkit.apps.music.data import load_folk

    tunes, _ = load_folk()
    return f"{len(tunes):,} folk tunes"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.music.config import MusicConfig

    # demo: 300 tunes, a 1 x 128 LSTM for 20 s; the n-gram (orders 1..6), the feed-forward network (at most 5
    # epochs) and 20 generated tunes checked by music21/abc2midi take the rest of the ~50 s
    folk = MusicConfig(
        name="demo-folk",
        max_tunes=300,
        hidden_size=128,
        epochs=20,
        batch_size=16,
        validate_every=0,
        early_stopping=3,
        time_budget=20,
        ngram_max_order=6,
        ff_epochs=5,
        eval_samples=20,
        val_fraction=0.1,
        test_fraction=0.1,
        **common,
    )
    if scale == "quick":
        folk = replace(
            folk, max_tunes=60, hidden_size=16, embedding_dim=16, epochs=1, time_budget=0, eval_samples=2,
            eval_max_length=200, ngram_max_order=3, ff_epochs=1,
        )  # fmt: skip
        return [DemoStage("folk", "music: folk tunes, LSTM over ABC tokens (tiny)", folk)]
    if scale == "demo":
        return [DemoStage("folk", "music: 300 folk tunes, LSTM over ABC tokens vs Kneser-Ney", folk)]
    # full (`rnnkit demo music`): all folk tunes for 10 minutes, and the chorales (parsed once, ~1-2 min)
    folk = replace(folk, max_tunes=0, hidden_size=256, epochs=4, validate_every=100, time_budget=600,
                   ngram_max_order=20, ff_epochs=30, eval_samples=100, val_fraction=0.05, test_fraction=0.05)  # fmt: skip
    chorales = replace(folk, name="demo-chorales", data="chorales", hidden_size=128, epochs=30, batch_size=16,
                       validate_every=0, time_budget=180, ngram_max_order=10, eval_samples=40,
                       val_fraction=0.1, test_fraction=0.1)  # fmt: skip
    return [
        DemoStage("folk", "music: folk tunes, LSTM over ABC tokens vs Kneser-Ney", folk),
        DemoStage("chorales", "music: Bach chorale melodies (pitch, duration, beat, fermata)", chorales),
    ]


def show(results: dict) -> list[str]:
    lines = []
    for key, label in (("folk", "A generated folk tune"), ("chorales", "A generated chorale melody")):
        res = results.get(key)
        if res is not None and res.samples:
            lines += [f"{label} (ABC; MIDI and piano roll in {res.run}/samples):", res.samples[0].rstrip()]
    return lines
