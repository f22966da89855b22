"""Feed-forward counterparts of the recurrent applications: the same inputs, no recurrence.

* :class:`MLPForecaster` - an MLP from the last ``window`` values to the next ``horizon`` values (direct
  multi-step forecasting).
* :class:`MLPTextClassifier` - word embeddings, mean- and max-pooled over the text, then an MLP.
* :class:`FixedContextLM` - Bengio et al. (2003): the embeddings of the previous ``context`` units
  concatenated, a tanh hidden layer and a softmax over the vocabulary.

Each is fitted with Adam and early stopping on the validation part (the weights of the best validation
epoch are kept), and answers like the corresponding classical baseline (forecast values, class
probabilities, bits per unit and next-unit top-k), so a report can put it beside the recurrent model.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rnnkit._errors import RnnkitError
from rnnkit.datasets import tokenize_words

__all__ = ["FixedContextLM", "MLPForecaster", "MLPTextClassifier"]

log = logging.getLogger(__name__)


def _early_stopping_fit(
    model: nn.Module,
    train_epoch: Callable[[torch.optim.Optimizer], float],
    val_loss: Callable[[], float] | None,
    lr: float,
    max_epochs: int,
    patience: int,
    weight_decay: float = 0.0,
) -> list[tuple[float, float]]:
    """Run ``train_epoch`` until ``val_loss`` has not improved for ``patience`` epochs; keep the best weights."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, since, history = math.inf, None, 0, []
    for epoch in range(max_epochs):
        model.train()
        tr = train_epoch(opt)
        model.eval()
        with torch.no_grad():
            va = val_loss() if val_loss is not None else tr
        history.append((tr, va))
        log.debug("epoch %d: train %.5f, val %.5f", epoch, tr, va)
        if va < best - 1e-9:
            best, best_state, since = va, copy.deepcopy(model.state_dict()), 0
        else:
            since += 1
            if since >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def _mlp(d_in: int, hidden: int, layers: int, d_out: int, act=nn.ReLU) -> nn.Sequential:
    mods: list[nn.Module] = []
    for _ in range(layers):
        mods += [nn.Linear(d_in, hidden), act()]
        d_in = hidden
    return nn.Sequential(*mods, nn.Linear(d_in, d_out))


# ----------------------------------------------------------------------------- saving (no pickle)
def _save_net(path, net: nn.Module | None, kind: str, vocab: list[str], sizes: dict[str, Any]) -> str:
    """A fitted baseline network as safetensors: its weights, and its kind, vocabulary and sizes as JSON in the
    metadata (no pickle); returns the file's sha256."""
    import json

    from rnnkit.files import module_tensors, write_safetensors

    if net is None:
        raise RnnkitError("the model is not fitted: call fit first")
    meta = {"kind": kind, "vocab": json.dumps(vocab, ensure_ascii=False), "sizes": json.dumps(sizes)}
    return write_safetensors(path, module_tensors(net)[0], meta)


def _load_net(path, sha256: str | None, kind: str, build: Callable):
    """What :func:`_save_net` wrote: ``build(vocab, sizes) -> (model, net)`` makes the model, whose ``net``
    takes the weights (all checked first); any damage is one RnnkitError naming the file."""
    import json

    from rnnkit.files import load_module_tensors, read_safetensors

    tensors, meta = read_safetensors(path, sha256)
    try:
        if meta.get("kind") != kind:
            raise ValueError(f"kind {meta.get('kind')!r}")
        vocab, sizes = json.loads(meta["vocab"]), json.loads(meta["sizes"])
        if not isinstance(vocab, list) or not all(isinstance(u, str) for u in vocab):
            raise ValueError("the vocabulary is not a list of strings")
        model, net = build(vocab, sizes)
    except (KeyError, TypeError, ValueError, RnnkitError) as exc:  # RnnkitError: sizes a constructor refuses
        raise RnnkitError(f"{path}: not a saved {kind} ({exc})") from None
    load_module_tensors(net, tensors, where=str(path))
    net.eval()
    return model


# ----------------------------------------------------------------------------- forecasting
class MLPForecaster:
    """MLP from the last ``window`` values to the next ``horizon`` values of one series.

    .. math:: \\hat y_{T+1..T+h} = \\sigma\\, \\mathrm{MLP}((y_{T-w+1..T} - \\mu) / \\sigma) + \\mu

    with ``mu, sigma`` the training part's mean and standard deviation.

    Args:
        window: input length ``w``; horizon: output length ``h``.
        hidden, layers: width and number of hidden ReLU layers.
        lr, max_epochs, patience, seed: Adam step size, epoch limit, early-stopping patience, torch seed.

    Shape:
        ``predict(history)`` -> ``(horizon,)`` from the last ``window`` values of ``history``.

    Example::

        mlp = MLPForecaster(window=24, horizon=12).fit(train, val)
        forecast = mlp.predict(np.concatenate([train, val]))   # the 12 steps after val
    """

    def __init__(
        self,
        window: int,
        horizon: int,
        hidden: int = 64,
        layers: int = 2,
        lr: float = 1e-3,
        max_epochs: int = 500,
        patience: int = 30,
        seed: int = 0,
    ):
        if window < 1 or horizon < 1:
            raise RnnkitError(f"window and horizon must be >= 1, got {window} and {horizon}")
        self.window, self.horizon, self.hidden, self.layers = window, horizon, hidden, layers
        self.lr, self.max_epochs, self.patience, self.seed = lr, max_epochs, patience, seed
        self.net: nn.Module | None = None
        self.history: list[tuple[float, float]] = []

    def _windows(self, y: np.ndarray, start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Input/target pairs whose targets start at index >= ``start``."""
        w, h = self.window, self.horizon
        idx = np.arange(max(start - w, 0), len(y) - w - h + 1)
        x = np.stack([y[i : i + w] for i in idx]) if len(idx) else np.zeros((0, w))
        t = np.stack([y[i + w : i + w + h] for i in idx]) if len(idx) else np.zeros((0, h))
        return torch.tensor(x, dtype=torch.float32), torch.tensor(t, dtype=torch.float32)

    def fit(self, train, val=()) -> MLPForecaster:
        """Fit on windows inside ``train``; stop early on windows whose targets lie in ``val``."""
        train = np.asarray(train, dtype=np.float64).reshape(-1)
        val = np.asarray(val, dtype=np.float64).reshape(-1)
        if len(train) < self.window + self.horizon:
            raise RnnkitError(
                f"train must hold at least window + horizon = {self.window + self.horizon} values, got {len(train)}"
            )
        self.mean, self.std = float(train.mean()), float(train.std() or 1.0)
        self.nonnegative = bool(train.min() >= 0)
        norm = (np.concatenate([train, val]) - self.mean) / self.std
        x, t = self._windows(norm[: len(train)], 0)
        xv, tv = self._windows(norm, len(train))
        torch.manual_seed(self.seed)
        self.net = _mlp(self.window, self.hidden, self.layers, self.horizon)
        net = self.net

        def epoch(opt):
            perm = torch.randperm(len(x))
            total = 0.0
            for b in perm.split(64):
                loss = nn.functional.mse_loss(net(x[b]), t[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            return total / len(x)

        val_loss = (lambda: float(nn.functional.mse_loss(net(xv), tv))) if len(xv) else None
        self.history = _early_stopping_fit(net, epoch, val_loss, self.lr, self.max_epochs, self.patience)
        return self

    def save(self, path) -> str:
        """Write the fitted forecaster to ``path`` (safetensors, no pickle); returns its sha256 (see :meth:`load`)."""
        sizes = {"window": self.window, "horizon": self.horizon, "hidden": self.hidden, "layers": self.layers}
        if self.net is not None:
            sizes.update(mean=self.mean, std=self.std, nonnegative=self.nonnegative)
        return _save_net(path, self.net, "MLPForecaster", [], sizes)

    @classmethod
    def load(cls, path, sha256: str | None = None) -> MLPForecaster:
        """The forecaster :meth:`save` wrote; with ``sha256`` a file whose checksum differs is refused. Any
        damage is one :class:`~rnnkit.RnnkitError` naming the file."""

        def build(_, sizes):
            keys = ("window", "horizon", "hidden", "layers")
            mlp = cls(**{k: int(sizes[k]) for k in keys})
            mlp.mean, mlp.std = float(sizes["mean"]), float(sizes["std"])
            mlp.nonnegative = bool(sizes["nonnegative"])
            if not (math.isfinite(mlp.mean) and math.isfinite(mlp.std) and mlp.std > 0):
                raise ValueError(f"scale {mlp.mean}, {mlp.std}")
            mlp.net = _mlp(mlp.window, mlp.hidden, mlp.layers, mlp.horizon)
            return mlp, mlp.net

        return _load_net(path, sha256, "MLPForecaster", build)

    def predict(self, history) -> np.ndarray:
        """Forecast the ``horizon`` values after ``history`` (its last ``window`` values are used)."""
        if self.net is None:
            raise RnnkitError("the model is not fitted: call fit(train, val) first")
        y = np.asarray(history, dtype=np.float64).reshape(-1)
        if len(y) < self.window:
            raise RnnkitError(f"history must hold at least window = {self.window} values, got {len(y)}")
        x = torch.tensor((y[-self.window :] - self.mean) / self.std, dtype=torch.float32)[None]
        with torch.no_grad():
            out = self.net(x)[0].double().numpy() * self.std + self.mean
        return np.maximum(out, 0.0) if self.nonnegative else out


# ----------------------------------------------------------------------------- text classification
class _PooledClassifier(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int, classes: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed, padding_idx=0)
        self.head = nn.Sequential(nn.Dropout(dropout), _mlp(2 * embed, hidden, 1, classes))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).unsqueeze(-1)  # (B, T, 1)
        e = self.embedding(ids)  # (B, T, E)
        mean = (e * mask).sum(1) / mask.sum(1).clamp(min=1)
        mx = e.masked_fill(~mask, -1e4).amax(1)
        mx = torch.where(mask.any(1), mx, torch.zeros_like(mx))
        return self.head(torch.cat([mean, mx], -1))  # (B, K)


class MLPTextClassifier:
    """Mean- and max-pooled word embeddings followed by an MLP (no word order beyond the tokens themselves).

    .. math:: p(y \\mid x) = \\operatorname{softmax}(\\mathrm{MLP}([\\tfrac1T \\textstyle\\sum_t e_{x_t};
              \\max_t e_{x_t}]))

    Args:
        embed, hidden: embedding and hidden sizes. max_vocab / min_freq: vocabulary from the training texts
        (``tokenize_words``); other words are dropped. max_len: keep the first ``max_len`` tokens (``None``:
        all). dropout, lr, batch_size, max_epochs, patience, seed: training settings; early stopping on
        validation accuracy.

    Shape:
        ``predict(texts)`` -> ``(N,)``; ``predict_proba(texts)`` -> ``(N, num_classes)``.

    Example::

        clf = MLPTextClassifier().fit(train_texts, train_labels, val_texts, val_labels)
        clf.score(test_texts, test_labels)
    """

    def __init__(
        self,
        embed: int = 64,
        hidden: int = 64,
        max_vocab: int = 50_000,
        min_freq: int = 1,
        max_len: int | None = None,
        dropout: float = 0.2,
        lr: float = 3e-3,
        batch_size: int = 64,
        max_epochs: int = 30,
        patience: int = 4,
        seed: int = 0,
    ):
        self.embed, self.hidden, self.max_vocab, self.min_freq = embed, hidden, max_vocab, min_freq
        self.max_len, self.dropout, self.lr, self.batch_size = max_len, dropout, lr, batch_size
        self.max_epochs, self.patience, self.seed = max_epochs, patience, seed
        self.words: dict[str, int] = {}
        self.net: _PooledClassifier | None = None
        self.num_classes = 0

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        out = []
        for text in texts:
            ids = [self.words[w] for w in tokenize_words(text) if w in self.words]
            out.append(ids[: self.max_len] if self.max_len else ids)
        return out

    @staticmethod
    def _pad(seqs: list[list[int]]) -> torch.Tensor:
        n = max((len(s) for s in seqs), default=0) or 1
        out = torch.zeros(len(seqs), n, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        return out

    def fit(self, texts, labels, val_texts=(), val_labels=(), num_classes: int | None = None):
        """Fit on ``(texts, labels)`` (class ids); stop early on validation accuracy."""
        from collections import Counter

        texts, val_texts = list(texts), list(val_texts)
        y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        yv = torch.as_tensor(np.asarray(val_labels, dtype=np.int64))
        if y.shape != (len(texts),) or yv.shape != (len(val_texts),) or len(texts) == 0:
            raise RnnkitError(
                f"expected one class id per text; got {len(texts)} texts, labels of shape {tuple(y.shape)}"
            )
        self.num_classes = int(num_classes or max(int(y.max()), int(yv.max()) if len(yv) else 0) + 1)
        counts = Counter(w for t in texts for w in tokenize_words(t))
        kept = [w for w, c in counts.most_common(self.max_vocab) if c >= self.min_freq]
        self.words = {w: i + 1 for i, w in enumerate(kept)}  # 0 is padding
        x, xv = self._encode(texts), self._encode(val_texts)
        torch.manual_seed(self.seed)
        self.net = net = _PooledClassifier(
            len(self.words) + 1, self.embed, self.hidden, self.num_classes, self.dropout
        )
        bs = self.batch_size

        def epoch(opt):
            total = 0.0
            for b in torch.randperm(len(x)).split(bs):
                loss = nn.functional.cross_entropy(net(self._pad([x[i] for i in b])), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            return total / len(x)

        def val_error():  # 1 - accuracy, so that lower is better
            pred = torch.cat([net(self._pad(xv[i : i + 256])).argmax(-1) for i in range(0, len(xv), 256)])
            return 1.0 - float((pred == yv).float().mean())

        self.history = _early_stopping_fit(
            net, epoch, val_error if xv else None, self.lr, self.max_epochs, self.patience
        )
        return self

    def save(self, path) -> str:
        """Write the fitted classifier to ``path`` (safetensors, no pickle); returns its sha256 (see :meth:`load`)."""
        words = sorted(self.words, key=self.words.get)  # word i + 1 has id i + 1 (0 pads)
        sizes = {
            "embed": self.embed,
            "hidden": self.hidden,
            "classes": self.num_classes,
            "max_len": self.max_len,
            "dropout": self.dropout,
        }
        return _save_net(path, self.net, "MLPTextClassifier", words, sizes)

    @classmethod
    def load(cls, path, sha256: str | None = None) -> MLPTextClassifier:
        """The classifier :meth:`save` wrote; with ``sha256`` a file whose checksum differs is refused. Any
        damage is one :class:`~rnnkit.RnnkitError` naming the file."""

        def build(words, sizes):
            max_len = sizes["max_len"]
            clf = cls(
                embed=int(sizes["embed"]),
                hidden=int(sizes["hidden"]),
                max_len=None if max_len is None else int(max_len),
                dropout=float(sizes["dropout"]),
            )
            clf.num_classes = int(sizes["classes"])
            if clf.num_classes < 1:
                raise ValueError(f"{clf.num_classes} classes")
            clf.words = {w: i + 1 for i, w in enumerate(words)}
            clf.net = _PooledClassifier(len(words) + 1, clf.embed, clf.hidden, clf.num_classes, clf.dropout)
            return clf, clf.net

        return _load_net(path, sha256, "MLPTextClassifier", build)

    def predict_proba(self, texts) -> np.ndarray:
        """Class probabilities, shape ``(N, num_classes)``."""
        if self.net is None:
            raise RnnkitError("the model is not fitted: call fit(texts, labels, val_texts, val_labels) first")
        x = self._encode(list(texts))
        with torch.no_grad():
            out = [torch.softmax(self.net(self._pad(x[i : i + 256])), -1) for i in range(0, len(x), 256)]
        return torch.cat(out).numpy() if out else np.zeros((0, self.num_classes))

    def predict(self, texts) -> np.ndarray:
        """The most probable class id of each text, shape ``(N,)``."""
        return self.predict_proba(texts).argmax(axis=1)

    def score(self, texts, labels) -> float:
        """Accuracy on ``(texts, labels)``."""
        return float(np.mean(self.predict(texts) == np.asarray(labels)))


# ----------------------------------------------------------------------------- language modelling
class _BengioLM(nn.Module):
    def __init__(self, vocab: int, context: int, embed: int, hidden: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab + 1, embed)  # the last index pads contexts at the start
        self.hidden = nn.Sequential(nn.Linear(context * embed, hidden), nn.Tanh())
        self.out = nn.Linear(hidden, vocab)

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        e = self.embedding(ctx).flatten(1)  # (B, context * E)
        return self.out(self.hidden(e))  # (B, V)


class FixedContextLM:
    """Bengio et al. (2003) fixed-context neural language model over characters or words.

    .. math:: p(w_t \\mid w_{t-n..t-1}) = \\operatorname{softmax}(U \\tanh(H [e_{w_{t-n}}; \\dots; e_{w_{t-1}}] + d) + b)

    Args:
        context: the number ``n`` of previous units seen. embed, hidden: sizes. min_count: rarer training
        units become ``<unk>`` (index 0 of ``vocab``). batch_size, samples_per_epoch: each epoch trains on
        this many random positions. max_val_positions: validation positions scored per epoch. lr,
        max_epochs, patience, seed: training settings; early stopping on validation cross-entropy.

    Shape:
        Units are characters (a ``str``) or words (a sequence of ``str``); ``log2_probs`` -> one value per unit.

    Example::

        lm = FixedContextLM(context=8).fit(train_text, val_text)
        lm.bits_per_unit(test_text), lm.next_topk("the quick brown fo", k=3)
    """

    def __init__(
        self,
        context: int = 8,
        embed: int = 32,
        hidden: int = 256,
        min_count: int = 1,
        batch_size: int = 256,
        samples_per_epoch: int = 100_000,
        max_val_positions: int = 50_000,
        lr: float = 2e-3,
        max_epochs: int = 30,
        patience: int = 3,
        seed: int = 0,
    ):
        if context < 1:
            raise RnnkitError(f"context must be >= 1, got {context}")
        self.context, self.embed, self.hidden, self.min_count = context, embed, hidden, min_count
        self.batch_size, self.samples_per_epoch, self.max_val_positions = (
            batch_size,
            samples_per_epoch,
            max_val_positions,
        )
        self.lr, self.max_epochs, self.patience, self.seed = lr, max_epochs, patience, seed
        self.vocab: list[str] = []
        self.net: _BengioLM | None = None

    def _ids(self, units) -> torch.Tensor:
        if isinstance(units, str) != self.chars:
            raise RnnkitError(
                f"this model was fitted on {'characters (a str)' if self.chars else 'words (a list)'}"
            )
        return torch.tensor([self._index.get(u, 0) for u in units], dtype=torch.long)

    def _contexts(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The ``context`` ids before each position, padded at the start of the text."""
        pad = len(self.vocab)
        padded = torch.cat([torch.full((self.context,), pad, dtype=torch.long), ids])
        offs = torch.arange(self.context)
        return padded[positions[:, None] + offs]  # (B, context); position p sees ids[p-context .. p-1]

    def fit(self, train, val=()) -> FixedContextLM:
        """Fit on ``train`` (a ``str`` for characters, else a list of words); stop early on ``val``."""
        from collections import Counter

        self.chars = isinstance(train, str)
        if len(train) < 2:
            raise RnnkitError(f"need at least 2 training units, got {len(train)}")
        counts = Counter(train)
        self.vocab = ["<unk>"] + sorted(u for u, c in counts.items() if c >= self.min_count)
        self._index = {u: i for i, u in enumerate(self.vocab)}
        if not len(val):  # no validation text: no early stopping (the default () fits either kind)
            val = "" if self.chars else []
        ids, vids = self._ids(train), self._ids(val)
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.net = net = _BengioLM(len(self.vocab), self.context, self.embed, self.hidden)
        vpos = torch.arange(min(len(vids), self.max_val_positions))

        def epoch(opt):
            pos = torch.randint(len(ids), (min(self.samples_per_epoch, 20 * len(ids)),), generator=gen)
            total = 0.0
            for b in pos.split(self.batch_size):
                loss = nn.functional.cross_entropy(net(self._contexts(ids, b)), ids[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            return total / len(pos)

        def val_loss():
            losses = [
                nn.functional.cross_entropy(net(self._contexts(vids, b)), vids[b], reduction="sum")
                for b in vpos.split(4096)
            ]
            return float(sum(losses)) / len(vpos)

        self.history = _early_stopping_fit(
            net, epoch, val_loss if len(vpos) else None, self.lr, self.max_epochs, self.patience
        )
        return self

    def save(self, path) -> str:
        """Write the fitted model to ``path`` (safetensors: the network's weights, the vocabulary and sizes in
        its metadata; no pickle); returns the file's sha256, which :meth:`load` checks."""
        sizes = {"context": self.context, "embed": self.embed, "hidden": self.hidden}
        if self.net is not None:
            sizes["chars"] = self.chars
        return _save_net(path, self.net, "FixedContextLM", self.vocab, sizes)

    @classmethod
    def load(cls, path, sha256: str | None = None) -> FixedContextLM:
        """The model :meth:`save` wrote; with ``sha256``, a file whose checksum differs is refused as damaged.
        Any damage is one :class:`~rnnkit.RnnkitError` naming the file."""

        def build(vocab, sizes):
            lm = cls(context=int(sizes["context"]), embed=int(sizes["embed"]), hidden=int(sizes["hidden"]))
            lm.chars, lm.vocab = bool(sizes["chars"]), vocab
            lm._index = {u: i for i, u in enumerate(vocab)}
            lm.net = _BengioLM(len(vocab), lm.context, lm.embed, lm.hidden)
            return lm, lm.net

        return _load_net(path, sha256, "FixedContextLM", build)

    def log2_probs(self, units) -> np.ndarray:
        """``log2 p(unit_t | previous context units)`` for every unit of a held-out text."""
        if self.net is None:
            raise RnnkitError("the model is not fitted: call fit(train, val) first")
        ids = self._ids(units)
        out = []
        with torch.no_grad():
            for b in torch.arange(len(ids)).split(4096):
                logp = torch.log_softmax(self.net(self._contexts(ids, b)), -1)
                out.append(logp.gather(1, ids[b, None])[:, 0] / math.log(2))
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def bits_per_unit(self, units) -> float:
        """Mean ``-log2 p`` per unit (bits per character or per word)."""
        if len(units) == 0:
            raise RnnkitError("cannot score an empty text")
        return float(-self.log2_probs(units).mean())

    def next_topk(self, context, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most likely next units after ``context`` with their probabilities."""
        if self.net is None:
            raise RnnkitError("the model is not fitted: call fit(train, val) first")
        ids = self._ids(context)
        with torch.no_grad():
            p = torch.softmax(self.net(self._contexts(ids, torch.tensor([len(ids)]))), -1)[0]
        top = torch.topk(p, min(k, len(p)))
        return [(self.vocab[int(i)], float(v)) for v, i in zip(top.values, top.indices)]
