"""The translation model, built from :class:`rnnkit.models.Seq2Seq`: its loss, its schedule and its decoding.

* loss: cross-entropy with label smoothing (Szegedy et al. 2016): the target distribution puts
  ``1 - eps`` on the true subword and spreads ``eps`` evenly over the vocabulary, so the model is not pushed
  to infinite confidence; the plain negative log-likelihood is reported next to it (``nll``).
* scheduled sampling (Bengio et al. 2015): the probability of feeding the true previous subword falls
  linearly from 1 in the first epoch to ``teacher_forcing`` in the last (:func:`teacher_forcing_at`).
* decoding: greedy, or batched beam search with length normalisation (:mod:`rnnkit.models.decoding`);
  :func:`translate_ids` returns each sentence's n-best list.
"""

from __future__ import annotations

import torch

from rnnkit.apps.translate.config import TranslateConfig
from rnnkit.apps.translate.data import BOS, EOS, PAD, collate

__all__ = ["build_model", "smoothed_loss", "teacher_forcing_at", "translate_ids"]


def build_model(
    cfg: TranslateConfig,
    src_vocab_size: int,
    tgt_vocab_size: int,
    feedforward: bool = False,
    copy_map: torch.Tensor | None = None,
):
    """A bidirectional-encoder, attention-decoder :class:`~rnnkit.models.Seq2Seq` for ``cfg``; with
    ``feedforward``, its counterpart without recurrence (``cfg.ff_layers`` time-delay convolutions as wide as the
    bidirectional encoder's output, a decoder that sees its last ``cfg.ff_context`` subwords). With
    ``cfg.copy_attention`` (both), ``copy_map`` (:func:`~rnnkit.apps.translate.data.copy_map`) says which target
    subword each source subword copies into."""
    from rnnkit.models import EncoderConfig, Seq2Seq, Seq2SeqConfig

    ff = cfg.feedforward_seq2seq(2 * cfg.hidden_size) if feedforward else {}
    between = cfg.dropout if cfg.num_layers > 1 else 0.0
    model = Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=src_vocab_size,
            tgt_vocab_size=tgt_vocab_size,
            embedding_dim=cfg.embedding_dim,
            encoder=EncoderConfig(
                cfg.cell, cfg.hidden_size, cfg.num_layers, bidirectional=True, dropout=between
            ),
            decoder=EncoderConfig(
                cfg.cell,
                cfg.hidden_size,
                cfg.num_layers,
                dropout=between,
                recurrent_dropout=cfg.recurrent_dropout,
            ),
            attention=cfg.attention,
            attention_dim=cfg.attention_dim,
            teacher_forcing=1.0,
            dropout=cfg.dropout,
            bos_id=BOS,
            eos_id=EOS,
            pad_id=PAD,
            copy_attention=cfg.copy_attention,
            **ff,
        )
    )
    if cfg.copy_attention and copy_map is not None:
        model.set_copy_map(copy_map)
    return model


def smoothed_loss(smoothing: float):
    """The trainer's ``loss_fn(model, batch, state)``: label-smoothed cross-entropy over target subwords.

    Metrics (sums over subwords): ``nll`` (the unsmoothed negative log-likelihood) and ``accuracy``.
    """
    from rnnkit.models._base import smoothed_cross_entropy, step_mask
    from rnnkit.train import LossOutput

    def loss_fn(model, batch, state=None):
        tgt = batch["tgt"]
        B, T = tgt.shape
        bos = torch.full((B, 1), BOS, dtype=torch.long, device=tgt.device)
        logits, _ = model(batch["src"], torch.cat([bos, tgt[:, :-1]], 1), batch["src_lengths"])  # (B, T, V)
        mask = step_mask(batch["tgt_lengths"], B, T, logits.device)
        lg, y = logits[mask], tgt[mask]  # (N, V), (N,)
        loss, nll, correct = smoothed_cross_entropy(lg, y, smoothing)
        return LossOutput(loss, int(y.numel()), None, {"nll": nll, "accuracy": correct})

    return loss_fn


def teacher_forcing_at(cfg: TranslateConfig, epoch: int) -> float:
    """Scheduled sampling: the teacher-forcing ratio of (0-based) ``epoch``, 1 -> ``cfg.teacher_forcing``."""
    if cfg.epochs <= 1:
        return cfg.teacher_forcing
    return 1.0 - (1.0 - cfg.teacher_forcing) * min(epoch, cfg.epochs - 1) / (cfg.epochs - 1)


def _max_length(src: list[list[int]]) -> int:
    return min(2 * max(len(s) for s in src) + 10, 512)


@torch.no_grad()
def translate_ids(
    model,
    src: list[list[int]],
    beam: int = 1,
    length_penalty: float = 1.0,
    batch_size: int = 64,
    attention: bool = False,
) -> list[dict]:
    """Translate source id lists; per sentence ``{"hypotheses": [(ids, score), ...], "attention"}``.

    ``beam = 1`` decodes greedily; ``beam > 1`` runs batched beam search and keeps its n-best list (up to
    ``beam`` hypotheses, best first). A score is the sum of the log-probabilities of the subwords and the
    end token divided by ``length ** length_penalty`` (the ranking of the beam search). ``attention``
    adds the best hypothesis's attention weights (its length x the source length) as a numpy array.
    Sentences are decoded in batches of similar length; the results come back in the input order.
    """
    model.eval()
    order = sorted(range(len(src)), key=lambda i: len(src[i]))
    out: list[dict] = [{} for _ in src]
    for a in range(0, len(order), batch_size):
        idx = order[a : a + batch_size]
        batch = collate([src[i] for i in idx])
        opts = {"max_length": _max_length([src[i] for i in idx])}
        if beam > 1:
            res = model.generate(
                batch["src"],
                batch["src_lengths"],
                strategy="beam",
                beam_size=beam,
                length_penalty=length_penalty,
                **opts,
            )
            hyps = res.hypotheses
        else:
            res = model.generate(batch["src"], batch["src_lengths"], strategy="greedy", **opts)
            steps = (res.lengths + res.finished.long()).clamp(min=1).float()
            norm = res.scores / steps**length_penalty if length_penalty else res.scores
            hyps = [[(toks, float(s))] for toks, s in zip(res.to_lists(), norm)]
        for k, i in enumerate(idx):
            entry = {"hypotheses": [(list(t), float(s)) for t, s in hyps[k]]}
            if attention and res.extras is not None:
                n = int(res.lengths[k])
                entry["attention"] = res.extras[k, :n, : len(src[i])].cpu().numpy()
            out[i] = entry
    return out
