"""Training a speech run: data, model, the shared trainer, the report, the run directory."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from rnnkit._errors import RnnkitError
from rnnkit.apps._common import (
    EpochBatches,
    build_trainer,
    finish_training,
    fit_feedforward,
    fit_member,
    per_epoch_generator,
    save_baseline_net,
    save_feedforward,
    save_members,
    save_run_files,
    setup_torch,
    training_summary,
)
from rnnkit.apps.base import TrainResult
from rnnkit.apps.rundir import RunBuilder, member_dir
from rnnkit.apps.speech import report
from rnnkit.apps.speech.config import SpeechConfig
from rnnkit.apps.speech.data import APP, collate, load_utterances, normalise, spec_augment, split
from rnnkit.apps.speech.model import build_model, predict_proba

__all__ = ["train", "train_ctc"]


def train(cfg: SpeechConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Train and evaluate the classifier and the DTW baseline; write the run ``cfg.runs_dir/cfg.name``."""
    from rnnkit.config import validate_config
    from rnnkit.train import seed_everything

    validate_config(cfg)
    if cfg.connected:
        return train_ctc(cfg, overwrite, say)
    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        utts = load_utterances(cfg)
        tr, va, te = split(cfg, utts)
        labels, classes = utts.labels, utts.classes
        feats = [normalise(s) for s in utts.features] if cfg.normalise else utts.features
        say(
            f"speech: {len(utts)} utterances, {len(classes)} classes, {utts.num_features} features per frame, "
            f"{cfg.split} split {len(tr)}/{len(va)}/{len(te)} (train/val/test)"
        )
        seed_everything(cfg.seed)
        model = build_model(cfg, utts.num_features, len(classes))
        untrained = predict_proba(model, [feats[i] for i in te]).argmax(1)

        def epoch_batches(epoch: int) -> list[dict[str, torch.Tensor]]:
            g = per_epoch_generator(cfg.seed, epoch)
            order = tr[torch.randperm(len(tr), generator=g).numpy()]
            out = []
            for s in range(0, len(order), cfg.batch_size):
                idx = order[s : s + cfg.batch_size]
                batch = collate([feats[i] for i in idx], labels[idx])
                batch["inputs"] = spec_augment(batch["inputs"], batch["lengths"], cfg, g)
                out.append(batch)
            return out

        val = [
            collate([feats[i] for i in va[s : s + 256]], labels[va[s : s + 256]])
            for s in range(0, len(va), 256)
        ]
        steps_per_epoch = -(-len(tr) // cfg.batch_size)
        trainer = build_trainer(model, cfg, run.path, grad_monitor_every=max(1, steps_per_epoch // 4))
        t_train = time.perf_counter()
        history = trainer.fit(
            EpochBatches(epoch_batches, steps_per_epoch),
            val or None,
            probe_batch=collate([feats[i] for i in tr[:32]], labels[tr[:32]]),
        )
        finish_training(trainer, run.path)
        train_seconds = time.perf_counter() - t_train

        te_y = labels[te]
        proba = predict_proba(model, [feats[i] for i in te])
        pred = proba.argmax(1)
        k = len(classes)
        scores = report.scores(te_y, pred, k)
        base_pred, base, base_info, ff, ff_model = None, {}, None, None, None
        if cfg.baseline:
            normed = feats if cfg.normalise else [normalise(s) for s in utts.features]
            base_pred, base_info = report.baseline(cfg, utts.features, normed, labels, tr, va, te)
            base = report.scores(te_y, base_pred, k)
            ff_pred, ff_info, ff_model = report.feedforward(cfg, normed, labels, tr, va, te)
            ff = {**ff_info, **report.scores(te_y, ff_pred, k)}
            say(f"baselines: DTW 1-NN accuracy {base['accuracy']:.4f}, MLP {ff['accuracy']:.4f}")
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "data": cfg.data,
            "classes": classes,
            "split": {
                "kind": cfg.split,
                "train": len(tr),
                "val": len(va),
                "test": len(te),
                "seed": cfg.split_seed,
                "test_speaker": cfg.test_speaker,
            },
            "test": scores,
            "baseline": {**base_info, **base} if base_info else None,
            "feedforward": ff,
            "untrained": report.scores(te_y, untrained, k),
            "f1_definition": "macro average of the per-class F1",
            "epochs_run": len(history),
            "best_epoch": report.best_epoch(history),
            **training_summary(model, trainer, train_seconds, seconds),
            "history": history,
        }
        save_run_files(run, model, cfg, APP, metrics)
        run.write_json(
            "labels.json", {"classes": classes, "num_features": utts.num_features, "normalise": cfg.normalise}
        )
        if ff_model is not None:  # `rnnkit evaluate` scores it again
            save_baseline_net(run, ff_model, "mlp")
        written = report.write_plots(run, cfg, history, te_y, pred, base_pred, classes)
        samples = report.samples(te, te_y, proba, classes)
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    baselines = {"DTW 1-NN": base, "MLP (no recurrence)": ff} if ff else {}
    rows = report.result_rows(cfg, scores, baselines, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])


def _ctc_corpus(cfg: SpeechConfig, say):
    from rnnkit.apps.speech.data import LETTERS, read_transcripts
    from rnnkit.apps.speech.synth import CTC_TASKS, load_corpus

    if cfg.data in CTC_TASKS:
        return load_corpus(cfg.data, cfg.train_size, cfg.split_seed, say), LETTERS
    corpus = read_transcripts(cfg.data, cfg.split_seed, cfg.val_fraction, cfg.test_fraction)
    return corpus, "".join(sorted({ch for t in corpus.texts for ch in t} | {" "}))


def train_ctc(cfg: SpeechConfig, overwrite: bool = False, say=print) -> TrainResult:
    """Connected speech: the conv + recurrent + CTC model on log-mel frames; scores (WER, CER) of greedy,
    prefix-beam and lexicon-snapped decoding on the test part(s); the run ``cfg.runs_dir/cfg.name``."""
    import numpy as np

    from rnnkit.apps.speech.data import collate_ctc, encode_texts, perturb_vocal_tract
    from rnnkit.apps.speech.model import (
        average_networks,
        build_ctc_model,
        transcribe,
        utterance_log_probs,
        word_models,
    )
    from rnnkit.train import seed_everything

    t_start = time.perf_counter()
    name = cfg.name or APP
    setup_torch(cfg.threads)
    with RunBuilder(cfg.runs_dir, name, overwrite) as run:
        corpus, alphabet = _ctc_corpus(cfg, say)
        tr, va = corpus.indices("train"), corpus.indices("val")
        tests = {p: corpus.indices(p) for p in ("test", "unseen") if len(corpus.indices(p))}
        stacked = np.concatenate([corpus.features[i] for i in tr])
        mean, std = stacked.mean(0), stacked.std(0) + 1e-5
        feats = [(f - mean) / std for f in corpus.features]
        band_mean, band_std = torch.from_numpy(mean).float(), torch.from_numpy(std).float()
        targets = encode_texts(corpus.texts, alphabet)
        seed_everything(cfg.seed)
        model = build_ctc_model(cfg, len(alphabet))

        def fits(i: int) -> bool:  # CTC needs a step per label plus one between repeated labels
            t = targets[i]
            need = len(t) + sum(a == b for a, b in zip(t, t[1:]))
            return int(model.steps(torch.tensor(len(feats[i])))) >= need

        dropped = [i for i in tr if not fits(i)]
        tr = np.array([i for i in tr if fits(i)])
        va = np.array([i for i in va if fits(i)])
        say(
            f"speech: {cfg.data}: {len(corpus.texts)} utterances, {len(alphabet)} characters, "
            f"train/val {len(tr)}/{len(va)}, test parts "
            + ", ".join(f"{p} {len(ix)}" for p, ix in tests.items())
            + (f"; {len(dropped)} training utterances too fast for CTC dropped" if dropped else "")
        )
        if len(tr) == 0:
            raise RnnkitError(
                "no training utterance is long enough for its transcript (CTC needs a step per character)"
            )
        lm_texts = [corpus.texts[i] for i in tr]
        lexicon, lm = word_models(lm_texts, alphabet, cfg.lm_order)
        untrained_lp = {p: utterance_log_probs(model, [feats[i] for i in ix]) for p, ix in tests.items()}

        def epoch_batches(epoch: int, seed: int = cfg.seed) -> list[dict[str, torch.Tensor]]:
            g = per_epoch_generator(seed, epoch)
            order = tr[torch.randperm(len(tr), generator=g).numpy()]
            # buckets of similar length inside a shuffled window: less padding, still random
            window = cfg.batch_size * 20
            out = []
            for w in range(0, len(order), window):
                chunk = sorted(order[w : w + window], key=lambda i: len(feats[i]))
                for s in range(0, len(chunk), cfg.batch_size):
                    idx = chunk[s : s + cfg.batch_size]
                    batch = collate_ctc([feats[i] for i in idx], [targets[i] for i in idx])
                    if cfg.vtlp > 0:
                        batch["inputs"] = perturb_vocal_tract(
                            batch["inputs"], batch["lengths"], band_mean, band_std, cfg.vtlp, g
                        )
                    batch["inputs"] = spec_augment(batch["inputs"], batch["lengths"], cfg, g)
                    out.append(batch)
            perm = torch.randperm(len(out), generator=g).tolist()
            return [out[k] for k in perm]

        val = [
            collate_ctc([feats[i] for i in va[s : s + 64]], [targets[i] for i in va[s : s + 64]])
            for s in range(0, len(va), 64)
        ]
        steps_per_epoch = sum(
            -(-len(tr[w : w + cfg.batch_size * 20]) // cfg.batch_size)
            for w in range(0, len(tr), cfg.batch_size * 20)
        )
        probe = collate_ctc([feats[i] for i in tr[:16]], [targets[i] for i in tr[:16]])
        # network k of an ensemble trains exactly as a single run with seed seed + k would; the time budget
        # is shared equally
        share = {"time_budget": cfg.time_budget / cfg.ensemble} if cfg.time_budget else {}
        members, member_epochs = [], []
        t_train = time.perf_counter()
        for k in range(cfg.ensemble):
            mcfg = replace(cfg, seed=cfg.seed + k, **share)
            if k:
                seed_everything(mcfg.seed)
                model = build_ctc_model(mcfg, len(alphabet))
            out_dir = member_dir(run.path, k)
            out_dir.mkdir(parents=True, exist_ok=True)
            done = fit_member(
                model,
                out_dir,
                run.path,
                lambda m=model, c=mcfg, d=out_dir: build_trainer(
                    m, c, d, grad_monitor_every=max(1, steps_per_epoch // 4)
                ),
                lambda t, seed=mcfg.seed: t.fit(
                    EpochBatches(lambda e: epoch_batches(e, seed), steps_per_epoch),
                    val or None,
                    probe_batch=probe,
                ),
            )
            if k == 0:
                history, trainer = done.history, done
            members.append(model)
            member_epochs.append(done.state.epoch)
            if cfg.ensemble > 1:
                say(f"ensemble member {k + 1}/{cfg.ensemble}: {done.state.epoch} epochs")
        model = members[0]
        train_seconds = time.perf_counter() - t_train
        feedforward, ff_info = None, None
        if cfg.ff_layers:  # the same front end, batches, trainer and decoders, no recurrence
            seed_everything(cfg.seed)
            feedforward = build_ctc_model(cfg, len(alphabet), feedforward=model.encoder.output_size)
            ff_info = fit_feedforward(
                feedforward,
                cfg,
                run.path,
                lambda t: t.fit(EpochBatches(epoch_batches, steps_per_epoch), val or None),
            )
            say(f"feed-forward counterpart: {ff_info['epochs']} epochs")

        def decoded(lp) -> dict[str, list[str]]:  # every decoder's texts of the log-probabilities lp
            hyps = {"greedy": transcribe(lp, alphabet, 1)}
            if cfg.beam_size > 1:
                hyps[f"beam {cfg.beam_size}"] = transcribe(lp, alphabet, cfg.beam_size)
            if cfg.lexicon:
                beam = cfg.lexicon_beam
                hyps[f"beam {beam} + lexicon"] = transcribe(lp, alphabet, beam, lexicon)
                if lm is not None:
                    hyps[f"beam {beam} + lexicon + LM"] = transcribe(lp, alphabet, beam, lexicon, lm, cfg)
            return hyps

        scores: dict[str, dict] = {}
        outputs: dict[str, dict[str, list[str]]] = {}
        alone: dict[str, list[float]] = {}  # an ensemble's networks, each alone (greedy WER)
        for part, ix in tests.items():
            refs = [corpus.texts[i] for i in ix]
            each = [utterance_log_probs(m, [feats[i] for i in ix]) for m in members]
            lp = average_networks(each)
            if len(each) > 1:
                alone[part] = [report.error_rates(refs, transcribe(e, alphabet, 1))["wer"] for e in each]
            hyps = decoded(lp)
            scores[part] = {k: report.error_rates(refs, h) for k, h in hyps.items()}
            scores[part]["untrained"] = report.error_rates(refs, transcribe(untrained_lp[part], alphabet, 1))
            scores[part]["count"] = len(ix)
            if feedforward is not None:  # each decoder's reading of the counterpart's log-probabilities
                ff_hyps = decoded(utterance_log_probs(feedforward, [feats[i] for i in ix]))
                scores[part][report.FEEDFORWARD] = {
                    k: report.error_rates(refs, h) for k, h in ff_hyps.items()
                }
            outputs[part] = {"refs": refs, **hyps}
        baseline_info = None
        if cfg.baseline:  # the classical recogniser: word templates cut from the same training part
            from rnnkit.apps.speech.templates import template_baseline

            rec, base_hyps = template_baseline(corpus.features, corpus.texts, tr, va, tests, seed=cfg.seed)
            for part, hyps in base_hyps.items():
                scores[part][report.TEMPLATES] = report.error_rates(outputs[part]["refs"], hyps)
                outputs[part][report.TEMPLATES] = hyps
            baseline_info = rec.info
            say(
                f"baseline: {rec.info['templates']} word templates, one-pass DTW: "
                + ", ".join(f"{p} WER {scores[p][report.TEMPLATES]['wer']:.3f}" for p in tests)
            )
        voice_tables = {
            part: {
                k: report.voice_table(outputs[part]["refs"], h, [corpus.voices[i] for i in ix])
                for k, h in outputs[part].items()
                if k != "refs"
            }
            for part, ix in tests.items()
        }
        seconds = time.perf_counter() - t_start
        metrics: dict[str, Any] = {
            "app": APP,
            "task": "connected speech (CTC)",
            "data": cfg.data,
            "alphabet": alphabet,
            "split": {
                "train": len(tr),
                "val": len(va),
                **{p: len(ix) for p, ix in tests.items()},
                "dropped_too_fast": len(dropped),
                "seed": cfg.split_seed,
            },
            "test": scores,
            "voices": voice_tables,
            "baseline": baseline_info,
            "feedforward": ff_info,
            "lexicon_words": len(lexicon),
            "lm": {"order": lm.order, "weight": cfg.lm_weight, "word_bonus": cfg.word_bonus} if lm else None,
            "epochs_run": len(history),
            "best_epoch": report.best_epoch(history),
            **training_summary(model, trainer, train_seconds, seconds, members),
            "history": history,
        }
        if cfg.ensemble > 1:  # each network alone, greedy, next to the ensemble's scores above
            metrics["ensemble"] = {
                "members": cfg.ensemble,
                "epochs": member_epochs,
                "greedy_wer_alone": alone,
            }
        save_run_files(run, model, cfg, APP, metrics)
        save_members(run, members)
        if feedforward is not None:
            save_feedforward(run, feedforward)
        run.write_json(
            "labels.json",
            {
                "kind": "ctc",
                "alphabet": alphabet,
                "mean": [float(v) for v in mean],
                "std": [float(v) for v in std],
                "lexicon": lexicon.words,
                "lm_texts": lm_texts,
                "members": cfg.ensemble,
            },
        )
        written = report.write_ctc_plots(run, cfg, history)
        last_part = "unseen" if "unseen" in outputs else next(iter(outputs))
        o = outputs[last_part]
        best_key = [k for k in o if k not in ("refs", report.TEMPLATES)][-1]
        samples = report.ctc_samples(o["refs"], o[best_key], [corpus.voices[i] for i in tests[last_part]])
        run.commit({"app": APP, "name": name, "data": cfg.data})
    final = run.final
    rows = report.ctc_result_rows(cfg, scores, seconds)
    return TrainResult(final, metrics, rows, samples, [final / p.name for p in written])
