"""Connected speech for CTC: utterances synthesised with espeak-ng and flite, augmented with sox, as log-mels.

Two built-in tasks:

* ``digits-ctc``: strings of 1-10 spoken digits ("three one four");
* ``phrases``: short spoken commands ("turn off the lights in the kitchen") drawn from templates over a
  vocabulary of about 250 words (:data:`VOCABULARY`).

A *voice* is an espeak-ng accent with a voice variant (``en-gb-x-rp+m3``) or a flite voice (``flite:awb``).
The voices are split before anything is synthesised: :data:`HELD_OUT_ACCENTS` x :data:`HELD_OUT_VARIANTS`
and :data:`HELD_OUT_FLITE` never speak a training, validation or seen-voice test utterance; they make the
``unseen`` test part. Every utterance gets its own speaking rate and pitch, and the training part is
augmented with sox (tempo, pitch shift, reverberation), a random gain and white noise at 10-40 dB SNR.
The test parts are augmented with a milder rate and pitch spread only, and their texts are kept out of
training (a phrase or digit string in a test part never occurs in training).

Synthesis runs once (one espeak-ng/flite and one sox process at a time; about 0.15 s per utterance on
the busy 2-core machine, 10 minutes for the 4,140 utterances of ``train_size=3000``) and the log-mel
features are cached under ``rnnkit.datasets.cache_dir() / "speech-ctc"`` in one .npz written atomically.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from rnnkit._errors import RnnkitError

__all__ = [
    "CTC_TASKS",
    "HELD_OUT_ACCENTS",
    "HELD_OUT_FLITE",
    "HELD_OUT_VARIANTS",
    "VOCABULARY",
    "Corpus",
    "digit_strings",
    "load_corpus",
    "phrases",
    "synthesize",
    "voices",
]

CTC_TASKS = ("digits-ctc", "phrases")
SAMPLE_RATE = 16000
CACHE_VERSION = {"digits-ctc": 2, "phrases": 3}
"""Versions of the synthesised corpora (their cache files are named by them). digits-ctc v2 and phrases v3:
sox dithers repeatably (``-R``), so every machine makes the same corpus; digits v1 and phrases v2 (the same
plans) differed from run to run by the dither noise. phrases v2: every test word is heard in training (see
:func:`_plan`)."""

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

TRAIN_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp")
HELD_OUT_ACCENTS = ("en-029", "en-us-nyc", "en-gb-x-gbcwmd")
TRAIN_VARIANTS = (
    "m1", "m2", "m3", "m5", "m6", "f1", "f2", "f3", "f5", "adam", "alicia", "andy", "annie", "benjamin",
    "caleb", "david", "ed", "edward", "iven", "john", "linda", "max", "paul", "rob", "robert", "steph",
    "travis", "victor", "zac", "aunty",
)  # fmt: skip
HELD_OUT_VARIANTS = ("m4", "m7", "f4", "belinda", "quincy", "grandma")
TRAIN_FLITE = ("kal16", "awb", "rms")
HELD_OUT_FLITE = ("slt",)

_ROOMS = "kitchen bedroom bathroom garage office hallway garden basement attic nursery study porch".split()
_DEVICES = (
    "lights lamp fan heater television radio oven kettle dishwasher printer computer speaker blinds "
    "curtains door window toaster fridge freezer camera alarm sprinkler"
).split()
_NUMBERS = (
    "one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty "
    "forty five fifty sixty ninety"
).split()
_UNITS = "seconds minutes hours".split()
_NAMES = (
    "anna ben carla david emma frank grace henry isabel jack kate leo maria nick olivia peter rosa sam "
    "tina victor william zoe mother father grandma uncle sarah james lucy tom"
).split()
_CITIES = (
    "london paris berlin madrid rome tokyo boston chicago denver seattle dublin oslo vienna cairo sydney "
    "toronto lisbon prague athens warsaw miami dallas atlanta houston phoenix"
).split()
_DAYS = "today tomorrow tonight monday tuesday wednesday thursday friday saturday sunday".split()
_GENRES = "jazz rock classical pop country blues reggae folk piano relaxing dance".split()
_APPS = "calendar camera browser email map settings notes clock calculator gallery weather".split()
_ITEMS = (
    "milk bread eggs butter cheese apples bananas coffee tea rice pasta tomatoes onions potatoes chicken "
    "fish sugar salt juice water yogurt soap carrots lemons oranges cereal flour honey"
).split()
_TASKS = [
    "call the doctor", "water the plants", "take out the trash", "feed the cat", "buy flowers",
    "pay the bills", "walk the dog", "check the mail", "clean the kitchen", "book a table",
    "wash the car", "pick up the kids", "send the report", "read the news",
]  # fmt: skip
_COLOURS = "red green blue yellow orange purple pink white warm cool".split()
_DIRECTIONS = "left right forward back up down".split()

_TEMPLATES = [
    "turn on the {device}",
    "turn off the {device}",
    "turn on the {device} in the {room}",
    "turn off the {device} in the {room}",
    "switch on the {device} in the {room}",
    "switch off the {device}",
    "set a timer for {number} {unit}",
    "set an alarm for {number} {day}",
    "play some {genre} music",
    "play {genre} music in the {room}",
    "pause the music",
    "stop the music",
    "next song please",
    "volume up",
    "volume down",
    "call {name}",
    "call {name} {day}",
    "send a message to {name}",
    "what is the weather in {city}",
    "what is the weather in {city} {day}",
    "open the {app}",
    "close the {app}",
    "move {direction} {number} steps",
    "go {direction}",
    "add {item} to the shopping list",
    "add {item} and {item} to the list",
    "remind me to {task} {day}",
    "remind me to {task}",
    "make the lights {colour}",
    "make the {room} lights {colour}",
    "dim the lights in the {room}",
    "is the {device} on",
    "lock the door",
    "unlock the door",
    "how long to drive to {city}",
    "show me the {app}",
]

_SLOTS = {
    "room": _ROOMS,
    "device": _DEVICES,
    "number": _NUMBERS,
    "unit": _UNITS,
    "name": _NAMES,
    "city": _CITIES,
    "day": _DAYS,
    "genre": _GENRES,
    "app": _APPS,
    "item": _ITEMS,
    "task": _TASKS,
    "colour": _COLOURS,
    "direction": _DIRECTIONS,
}

VOCABULARY: tuple[str, ...] = tuple(
    sorted(
        {w for t in _TEMPLATES for w in t.split() if "{" not in w}
        | {w for words in _SLOTS.values() for entry in words for w in entry.split()}
        | set(DIGIT_WORDS)
    )
)
"""Every word of the built-in tasks (the lexicon of lexicon-constrained decoding)."""


def digit_strings(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` random digit strings of 1-10 digits, spoken as words: ``"three one four"``."""
    out = []
    for _ in range(n):
        k = int(rng.integers(1, 11))
        out.append(" ".join(DIGIT_WORDS[int(d)] for d in rng.integers(0, 10, size=k)))
    return out


def _phrase(rng: np.random.Generator, template: str | None = None) -> tuple[str, str]:
    """``(template, text)``: a random template (or the one given) with random slot words."""
    if template is None:
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
    parts = template.split("{")
    text = parts[0]
    for part in parts[1:]:
        slot, rest = part.split("}", 1)
        words = _SLOTS[slot]
        text += words[int(rng.integers(len(words)))] + rest
    return template, text


def phrases(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` random command phrases from the templates and slot words."""
    return [_phrase(rng)[1] for _ in range(n)]


def _combinations(template: str) -> int:
    """How many different texts ``template`` can make."""
    return int(np.prod([len(_SLOTS[p.split("}", 1)[0]]) for p in template.split("{")[1:]]))


COMPOSITIONAL = 10
"""Phrase templates with at least this many texts are *compositional*: their test texts are new sentences
(never in training). A fixed command ("volume up") or a small template ("go {direction}") cannot be held
out without taking its words out of training, so its texts may occur in every part (the unseen voices
still never speak in training)."""


def voices(held_out: bool) -> list[str]:
    """The voices of training (``held_out=False``) or of the unseen-voice test (``True``)."""
    accents, variants, flite = (
        (HELD_OUT_ACCENTS, HELD_OUT_VARIANTS, HELD_OUT_FLITE)
        if held_out
        else (TRAIN_ACCENTS, TRAIN_VARIANTS, TRAIN_FLITE)
    )
    return [f"{a}+{v}" for a in accents for v in variants] + [f"flite:{f}" for f in flite]


def _need_tools() -> None:
    missing = [t for t in ("espeak-ng", "flite", "sox") if shutil.which(t) is None]
    if missing:
        raise RnnkitError(
            f"connected-speech synthesis needs {', '.join(missing)} (Debian: apt-get install espeak-ng flite sox)"
        )


def synthesize(text: str, voice: str, rng: np.random.Generator, augment: bool) -> np.ndarray:
    """One utterance of ``text`` in ``voice`` as float32 samples at 16 kHz, with a random rate and pitch;
    with ``augment`` also sox tempo, pitch shift and reverberation, a random gain and white noise."""
    import soundfile

    if voice.startswith("flite:"):
        stretch = float(rng.uniform(0.8, 1.25) if augment else rng.uniform(0.9, 1.1))
        cmd = ["flite", "-voice", voice[6:], "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o"]
        cmd.append("/dev/stdout")
    else:
        speed = int(rng.integers(120, 220) if augment else rng.integers(140, 200))
        pitch = int(rng.integers(20, 80) if augment else rng.integers(35, 65))
        cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    wav = subprocess.run(cmd, capture_output=True, check=True).stdout
    effects = ["tempo", f"{rng.uniform(0.85, 1.15):.3f}", "pitch", str(int(rng.integers(-250, 250)))]
    if augment and rng.random() < 0.5:
        effects += ["reverb", str(int(rng.integers(10, 60)))]
    # -R: sox seeds its dither with a fixed number (without it every run dithers differently, so the same
    # plan gave a slightly different corpus on every machine)
    sox = ["sox", "-R", "-q", "-t", "wav", "-", "-r", str(SAMPLE_RATE), *"-c 1 -b 16 -t wav -".split()]
    out = subprocess.run(
        sox + (effects if augment else []), input=wav, capture_output=True, check=True
    ).stdout
    y, rate = soundfile.read(io.BytesIO(out), dtype="float32")
    if rate != SAMPLE_RATE:  # sox resampled; a mismatch means a broken pipe
        raise RnnkitError(f"sox returned {rate} Hz audio, expected {SAMPLE_RATE}")
    y = y / (np.abs(y).max() + 1e-6) * 0.5
    if augment:
        y = y * float(10 ** rng.uniform(-0.75, 0.25))  # -15 .. +5 dB
        snr = rng.uniform(10, 40)
        power = float(np.mean(y**2)) + 1e-12
        y = y + rng.normal(0, np.sqrt(power / 10 ** (snr / 10)), size=y.shape).astype(np.float32)
    return y.astype(np.float32)


@dataclass
class Corpus:
    """Feature sequences with transcripts: ``features[i]`` (frames, mels) float32, ``texts[i]``,
    ``voices[i]`` and ``parts[i]`` in ``train | val | test | unseen``."""

    features: list[np.ndarray]
    texts: list[str]
    voices: list[str]
    parts: np.ndarray

    def indices(self, part: str) -> np.ndarray:
        return np.flatnonzero(self.parts == part)


PART_SIZES = {"train": 1.0, "val": 0.06, "test": 0.12, "unseen": 0.2}
"""Sizes of the parts as shares of the training utterances."""


def _plan(task: str, train_size: int, rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """``(part, text, voice)`` of every utterance to synthesise, test parts first.

    ``phrases``: a test text of a compositional template (:data:`COMPOSITIONAL`) never occurs in training
    or validation (at most half of a template's texts are held out; later draws of a template whose half
    is taken are shared), and every word of the test texts occurs in training at least 3 times (phrases that use
    a missing word are added to training until it does; a held-out text only when no other text has it).
    """
    sizes = {p: max(1, int(round(f * train_size))) for p, f in PART_SIZES.items()}
    held_out: set[str] = set()
    per_template: dict[str, int] = {}
    plan: list[tuple[str, str, str]] = []
    seen, unseen = voices(False), voices(True)
    digits = task == "digits-ctc"
    for part in ("test", "unseen"):  # texts first, then voices (the order of the cached v1 digit corpus)
        if digits:
            texts = digit_strings(sizes[part], rng)
        else:
            texts = []
            for _ in range(sizes[part]):
                template, text = _phrase(rng)
                n = _combinations(template)
                # hold a text out while at most half of its template's texts are held out
                if n >= COMPOSITIONAL and (text in held_out or per_template.get(template, 0) < n // 2):
                    per_template[template] = per_template.get(template, 0) + (text not in held_out)
                    held_out.add(text)
                texts.append(text)
        pool = unseen if part == "unseen" else seen
        plan += [(part, text, pool[int(rng.integers(len(pool)))]) for text in texts]

    def draw(template=None) -> str | None:
        for _ in range(1000):  # None: every text of ``template`` is held out
            text = _phrase(rng, template)[1]
            if text not in held_out:
                return text
        return None

    for part in ("train", "val"):
        texts = digit_strings(sizes[part], rng) if digits else None
        for k in range(sizes[part]):
            text = texts[k] if digits else draw()
            plan.append((part, text, seen[int(rng.integers(len(seen)))]))
    if not digits:
        counts: dict[str, int] = {}
        for part, text, _ in plan:
            if part == "train":
                for w in text.split():
                    counts[w] = counts.get(w, 0) + 1
        needed = sorted({w for part, text, _ in plan if part in ("test", "unseen") for w in text.split()})
        for w in needed:
            uses = [t for t in _TEMPLATES if w in t.split()] or [
                t
                for t in _TEMPLATES
                if any(w in e.split() for p in t.split("{")[1:] for e in _SLOTS[p.split("}")[0]])
            ]
            tries = 0
            while counts.get(w, 0) < 3 and tries < 2000:
                tries += 1
                template = uses[int(rng.integers(len(uses)))]
                # the last resort for a word whose every text is held out: a held-out text
                text = draw(template) if tries < 1000 else _phrase(rng, template)[1]
                if text is not None and w in text.split():
                    plan.append(("train", text, seen[int(rng.integers(len(seen)))]))
                    for v in text.split():
                        counts[v] = counts.get(v, 0) + 1
    return plan


def load_corpus(task: str, train_size: int, seed: int = 0, say=print) -> Corpus:
    """The built-in ``task`` (``digits-ctc`` or ``phrases``) with ``train_size`` training utterances,
    synthesised once and cached."""
    from rnnkit.apps.speech.features import N_MELS, log_mel
    from rnnkit.datasets import cache_dir
    from rnnkit.files import atomic_write_bytes

    if task not in CTC_TASKS:
        raise RnnkitError(f"task: expected one of {CTC_TASKS}, got {task!r}")
    path = cache_dir() / "speech-ctc" / f"{task}-v{CACHE_VERSION[task]}-n{train_size}-s{seed}-m{N_MELS}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                bounds = np.concatenate([[0], np.cumsum(z["lengths"])])
                X = z["X"].astype(np.float32)
                feats = [X[bounds[i] : bounds[i + 1]] for i in range(len(z["lengths"]))]
                return Corpus(feats, [str(t) for t in z["texts"]], [str(v) for v in z["voices"]], z["parts"])
        except (OSError, ValueError, KeyError, EOFError):
            say(f"speech: the cached {path.name} is damaged; synthesising it again")
    _need_tools()
    rng = np.random.default_rng(seed)
    plan = _plan(task, train_size, rng)
    say(f"speech: synthesising {len(plan)} {task} utterances once (espeak-ng, flite, sox); cached after")
    feats, texts, vs, parts = [], [], [], []
    for part, text, voice in plan:
        y = synthesize(text, voice, rng, augment=part == "train")
        f = log_mel(y)
        if len(f) < 8:
            continue
        feats.append(f.astype(np.float16))
        texts.append(text)
        vs.append(voice)
        parts.append(part)
    buf = io.BytesIO()
    np.savez(
        buf,
        X=np.concatenate(feats),
        lengths=np.array([len(f) for f in feats]),
        texts=np.array(texts),
        voices=np.array(vs),
        parts=np.array(parts),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return Corpus([f.astype(np.float32) for f in feats], texts, vs, np.array(parts))
