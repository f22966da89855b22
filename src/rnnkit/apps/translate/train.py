"""Training a translation run: data, subword vocabularies, model, the shared trainer, the report, the run."""

from __future__ import annotations

import time
from typing import Any

import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import (
    EpochBatches,
    build_trainer,
    fit_feedforward,
    fit_member,
    per_epoch_generator,
    save_feedforward,
    save_members,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.rundir import RunBuilder
from rnnkit.apps.translate import report
from rnnkit.apps.translate.config import TranslateConfig
from rnnkit.apps.translate.data import (
    APP,
    batches,
    collate,
    copy_map,
    encode_sources,
    encode_targets,
    load_pairs,
    max_words,
    other_spellings,
    own_spelling,
    scored_test_pairs,
    spelling_units,
    split,
    train_vocabularies,
)
from rnnkit.apps.translate.model import build_model, smoothed_loss, teacher_forcing_at, translate_ids

__all__ = ["train"]


def _trainer(cfg: TranslateConfig, model, run_path, steps_per_epoch: int):
    """The shared trainer (early stopping on the validation loss, ``cfg.time_budget``) with the
    label-smoothed loss."""
    trainer = build_trainer(model, cfg, run_path, grad_monitor_every=max(1, steps_per_epoch // 4))
    trainer.loss_fn = smoothed_loss(cfg.label_smoothing)
    return trainer


def _plot_choice(src: list[list[int]], greedy: list[dict], k: int = 3) -> list[tuple[int, dict]]:
    """The longest of the first 100 test sentences that still make a readable heat map (<= 16 subwords)."""
    fits = [j for j in range(min(100, len(src))) if len(src[j]) <= 16 and greedy[j]["hypotheses"][0][0]]
    return [(j, greedy[j]) for j in sorted(fits, key=lambda j: -len(src[j]))[:k]]


def _decode(vocab, results: list[dict]) -> list[str]:
    return [vocab.decode(r["hypotheses"][0][0]) for r in results]


def train(cfg: TranslateConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the translator and its baselines; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.config import validate_config
    from rnnkit.train import seed_everything

    validate_config(cfg)
    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        data = load_pairs(cfg)
        tr, va, te = split(cfg, data)
        if len(tr) == 0 or len(te) == 0:
            raise RnnkitError(f"{data.name}: the split left {len(tr)} training and {len(te)} test pairs")
        every = cfg.spellings == "variants"  # num2words' English numbers: train on each way of writing them
        tr = [i for unit in spelling_units(data, tr, every) for i in unit]
        src_vocab, tgt_vocab = train_vocabularies(
            cfg, [data.sources[i] for i in tr], [data.targets[i] for i in tr]
        )
        src_ids = encode_sources(src_vocab, data.sources)
        tgt_ids = encode_targets(tgt_vocab, data.targets)
        too_long = [i for i in tr if len(src_ids[i]) > cfg.max_tokens]
        tr = [i for i in tr if len(src_ids[i]) <= cfg.max_tokens]
        if not tr:
            raise RnnkitError(
                f"{data.name}: every training source is longer than max_tokens={cfg.max_tokens}"
            )
        te_eval, te_other = scored_test_pairs(cfg, data, te)
        va = own_spelling(data, va) + (other_spellings(data, va, cfg.split_seed) if every else [])
        say(
            f"translate: {data.name}, {len(own_spelling(data, range(len(data))))} pairs, split {len(tr)}/"
            f"{len(va)}/{len(own_spelling(data, te))} (train/val/test"
            f"{', by book' if cfg.data == 'bible' and cfg.split == 'book' else ''}"
            f"{', train and val in every spelling' if every and data.spelling_of else ''}), subword vocabularies "
            f"{len(src_vocab)}/{len(tgt_vocab)}{' (shared)' if cfg.shared_vocab else ''}"
        )
        cmap = copy_map(src_vocab, tgt_vocab) if cfg.copy_attention else None
        seed_everything(cfg.seed)
        model = build_model(cfg, len(src_vocab), len(tgt_vocab), copy_map=cmap)
        te_src = [src_ids[i] for i in te_eval]
        refs = [data.targets[i] for i in te_eval]
        untrained = report.scores(_decode(tgt_vocab, translate_ids(model, te_src[:200])), refs[:200])

        tr_src, tr_tgt = [src_ids[i] for i in tr], [tgt_ids[i] for i in tr]
        at = {i: k for k, i in enumerate(tr)}
        # one entry per pair of the data set's own spelling, with its other spellings (positions in tr_src)
        units = [[at[i] for i in u if i in at] for u in spelling_units(data, tr, every)]
        units = [u for u in units if u]

        def epoch_batches(epoch: int, net=model):
            # scheduled sampling; on --resume the trainer's state.epoch names the epoch it goes on with
            net.set_teacher_forcing(teacher_forcing_at(cfg, epoch))
            g = per_epoch_generator(cfg.seed, epoch)
            order = torch.randperm(len(units), generator=g).tolist()
            if any(len(u) > 1 for u in units):  # each number written one of its ways, drawn anew each epoch
                pick = torch.rand(len(units), generator=g).tolist()
                order = [units[u][int(pick[k] * len(units[u]))] for k, u in enumerate(order)]
            else:
                order = [units[u][0] for u in order]
            return batches(tr_src, tr_tgt, cfg.batch_size, order)

        val = None
        if len(va):
            val = batches([src_ids[i] for i in va], [tgt_ids[i] for i in va], 128, list(range(len(va))))
        steps_per_epoch = -(-len(units) // cfg.batch_size)
        t_train = time.perf_counter()
        # through fit_member, so that a run resumed while its feed-forward counterpart trains keeps the network
        trainer = fit_member(
            model,
            run.path,
            run.path,
            lambda: _trainer(cfg, model, run.path, steps_per_epoch),
            lambda t: t.fit(
                EpochBatches(epoch_batches, steps_per_epoch),
                val,
                probe_batch=collate(tr_src[:32], tr_tgt[:32]),
            ),
        )
        history = trainer.history
        train_seconds = time.perf_counter() - t_train
        feedforward = None
        if cfg.ff_layers:  # the same batches, loss, trainer settings and decoding, no recurrence
            seed_everything(cfg.seed)
            feedforward = build_model(cfg, len(src_vocab), len(tgt_vocab), feedforward=True, copy_map=cmap)

            def fit_ff(t):
                t.loss_fn = smoothed_loss(cfg.label_smoothing)
                return t.fit(EpochBatches(lambda e: epoch_batches(e, feedforward), steps_per_epoch), val)

            ff_info = fit_feedforward(feedforward, cfg, run.path, fit_ff)
            say(f"translate: feed-forward counterpart trained, {ff_info['epochs']} epochs")

        t_eval = time.perf_counter()
        greedy = translate_ids(model, te_src, beam=1, attention=True)
        beam = translate_ids(model, te_src, beam=cfg.beam, length_penalty=cfg.length_penalty)
        outputs = {"greedy": _decode(tgt_vocab, greedy), f"beam {cfg.beam}": _decode(tgt_vocab, beam)}
        model_scores = {"greedy": report.scores(outputs["greedy"], refs)}
        model_scores["beam"] = report.scores(outputs[f"beam {cfg.beam}"], refs)
        eval_seconds = time.perf_counter() - t_eval
        test_sources = [data.sources[i] for i in te_eval]
        tags = sorted({s.split(" ", 1)[0] for s in test_sources if s.startswith("<2")})
        for tag in tags:  # several target languages: each one's beam scores too
            rows = [j for j, s in enumerate(test_sources) if s.startswith(tag + " ")]
            hyps = outputs[f"beam {cfg.beam}"]
            model_scores.setdefault("beam_by_language", {})[tag[2:-1]] = report.scores(
                [hyps[j] for j in rows], [refs[j] for j in rows]
            )
        other_src = [data.sources[i] for i in te_other]
        other_refs = [data.targets[i] for i in te_other]
        base, base_out = report.baselines(
            cfg,
            [data.sources[i] for i in tr],
            [data.targets[i] for i in tr],
            test_sources,
            refs,
            (other_src, other_refs),
        )
        other_out: dict[str, list[str]] = {}
        if te_other:  # the same test numbers written another way
            o_ids = [src_ids[i] for i in te_other]
            other_out["greedy"] = _decode(tgt_vocab, translate_ids(model, o_ids))
            other_out[f"beam {cfg.beam}"] = _decode(
                tgt_vocab, translate_ids(model, o_ids, beam=cfg.beam, length_penalty=cfg.length_penalty)
            )
            other_out["IBM1"] = base_out.pop("ibm1_other")
            model_scores["other_spellings"] = {
                "pairs": len(te_other),
                "greedy": report.scores(other_out["greedy"], other_refs),
                "beam": report.scores(other_out[f"beam {cfg.beam}"], other_refs),
            }
        if feedforward is not None:
            t0 = time.perf_counter()
            ff_greedy = _decode(tgt_vocab, translate_ids(feedforward, te_src, beam=1))
            base_out["feedforward"] = _decode(
                tgt_vocab,
                translate_ids(feedforward, te_src, beam=cfg.beam, length_penalty=cfg.length_penalty),
            )
            base["feedforward"] = {
                "name": report.FEEDFORWARD,
                **report.scores(base_out["feedforward"], refs),
                "greedy": report.scores(ff_greedy, refs),
                **ff_info,
            }
            if te_other:
                ff_other = translate_ids(feedforward, o_ids, beam=cfg.beam, length_penalty=cfg.length_penalty)
                other_out["feed-forward"] = _decode(tgt_vocab, ff_other)
                base["feedforward"]["other_spellings"] = report.scores(other_out["feed-forward"], other_refs)
            base["feedforward"]["eval_seconds"] = round(time.perf_counter() - t0, 2)
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "data": data.name,
            "split": {
                "kind": "book" if cfg.data == "bible" and cfg.split == "book" else "random",
                "by_number": cfg.data == "num2words",
                "train": len(units),
                "val": len(own_spelling(data, va)),
                "test": len(own_spelling(data, te)),
                "scored": len(te_eval),
                # num2words' English numbers: the spellings trained on, and how many pairs that made
                "spellings": cfg.spellings if data.spelling_of is not None else "one",
                "train_pairs": len(tr),
                "scored_other_spellings": len(te_other),
                "seed": cfg.split_seed,
                "max_words": max_words(cfg),
                "dropped_too_long": len(too_long),
            },
            "vocabulary": {
                "tokenizer": f"sentencepiece {cfg.tokenizer}",
                "source": len(src_vocab),
                "target": len(tgt_vocab),
                "shared": cfg.shared_vocab,
            },
            "test": {**model_scores, "beam_size": cfg.beam, "length_penalty": cfg.length_penalty},
            "baselines": base,
            "untrained": {"pairs": min(200, len(te_eval)), **untrained},
            "eval_seconds": round(eval_seconds, 2),
            "epochs_run": len(history),
            "stop_reason": trainer.state.stop_reason,
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        save_members(run, [model])  # the network's resume copy goes
        if feedforward is not None:
            save_feedforward(run, feedforward)
        if cfg.shared_vocab:
            src_vocab.save(run.file("vocab.spm"))
        else:
            src_vocab.save(run.file("source.spm"))
            tgt_vocab.save(run.file("target.spm"))
        run.write_json(
            "translate.json",
            {"shared_vocab": cfg.shared_vocab, "max_tokens": cfg.max_tokens, "data": data.name},
        )
        items = [
            (src_vocab.id_pieces(te_src[j]), tgt_vocab.id_pieces(g["hypotheses"][0][0]), g["attention"])
            for j, g in _plot_choice(te_src, greedy)
        ]
        written = report.write_plots(run, cfg, data.name, history, items)
        others = {"IBM1": base_out["ibm1"]} | (
            {"feed-forward": base_out["feedforward"]} if feedforward else {}
        )
        samples = report.samples(test_sources, refs, {**outputs, **others}, k=5)
        if te_other:  # the longest of the other spellings: what the demo shows
            longest = sorted(range(len(te_other)), key=lambda j: -len(other_src[j]))[:3]
            samples += [report.OTHER_SPELLINGS] + report.samples(
                [other_src[j] for j in longest],
                [other_refs[j] for j in longest],
                {k: [v[j] for j in longest] for k, v in other_out.items()},
                k=3,
            )
        run.commit({"app": APP, "name": name, "data": data.name})
    final = run.final
    rows = report.result_rows(data.name, model_scores, base, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
