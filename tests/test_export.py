"""ONNX and torch.export: exported layers and models compute what rnnkit's reference backend computes.

Every exported graph runs in onnxruntime (an outside implementation of ONNX's LSTM/GRU/RNN, Loop and
the rest) and is compared with PyTorch within 1e-5 (float32): outputs and final states, padded batches with
a length of 0, bidirectional and stacked layers, chunked streaming against the whole sequence.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

import rnnkit
from rnnkit.export import ONNX_OPS, ClassifierEnsemble, export_run, left_out_of_export, to_onnx
from rnnkit.models import (
    ClassifierConfig,
    EncoderConfig,
    LanguageModel,
    LanguageModelConfig,
    RegressorConfig,
    Seq2Seq,
    Seq2SeqConfig,
    SequenceClassifier,
    SequenceRegressor,
)

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TOL = dict(atol=1e-5, rtol=1e-5)


def _session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _parts(state):
    return state if isinstance(state, tuple) else (state,)


def _reference(layer, x, state, lengths):
    with rnnkit.use_backend("reference"), torch.no_grad():
        y, fin = layer(x, state if layer.cell.paired_state else state[0], lengths)
    return y, _parts(fin)


def _feeds(x, lengths, state):
    feeds = {"input": x.numpy(), "lengths": lengths.numpy()}
    feeds.update({n: s.numpy() for n, s in zip(("h0", "c0"), state)})
    return feeds


def _check_layer(layer, tmp_path, ops="auto", B=4, T=6):
    """Export ``layer``, run it in onnxruntime on a padded batch (one length 0) with a random start state,
    and compare with torch. The export used batch 2 and 3 steps: other sizes check the dynamic axes."""
    layer.eval()
    path = to_onnx(layer, tmp_path / "layer.onnx", ops=ops)
    x = torch.randn(B, T, layer.input_size)
    if not layer.batch_first:
        x = x.transpose(0, 1).contiguous()
    lengths = torch.tensor([T, 1, 0, T - 2][:B])
    state = tuple(torch.randn_like(s) for s in _parts(layer.zeros_state(B)))
    y, fin = _reference(layer, x, state, lengths)
    got = _session(path).run(None, _feeds(x, lengths, state))
    assert len(got) == 1 + len(fin)
    try:
        for g, r in zip(got, (y, *fin)):
            torch.testing.assert_close(torch.from_numpy(g), r, **TOL)
    except AssertionError:
        # layer norm over few features amplifies float32 rounding; then onnxruntime must be at least as
        # close as torch's float32 result to the float64 one (the exact computation)
        y64, fin64 = _reference(
            copy.deepcopy(layer).double(), x.double(), tuple(s.double() for s in state), lengths
        )
        for g, r, r64 in zip(got, (y, *fin), (y64, *fin64)):
            err_onnx = (torch.from_numpy(g).double() - r64).abs().max()
            err_torch = (r.double() - r64).abs().max()
            assert err_onnx <= err_torch + 1e-6, f"onnxruntime {err_onnx:.2e} vs torch {err_torch:.2e}"
    return path


# a representative grid: every cell option once, with stacking, both directions and the merges spread over it
LAYERS = {
    "lstm": lambda: rnnkit.LSTM(3, 5),
    "lstm-bi-2": lambda: rnnkit.LSTM(3, 5, num_layers=2, bidirectional=True),
    "lstm-peephole-bi": lambda: rnnkit.LSTM(3, 5, peephole=True, bidirectional=True),
    "lstm-ln-proj-bi-mean": lambda: rnnkit.LSTM(
        3, 6, layer_norm=True, proj_size=4, bidirectional=True, merge="mean"
    ),
    "lstm-clip-nobias": lambda: rnnkit.LSTM(3, 5, cell_clip=0.3, bias=False),
    "gru-bi-2": lambda: rnnkit.GRU(3, 5, num_layers=2, bidirectional=True),
    "gru-cho-ln": lambda: rnnkit.GRU(3, 5, reset_after=False, layer_norm=True),
    "gru-ln-sum": lambda: rnnkit.GRU(3, 5, layer_norm=True, bidirectional=True, merge="sum"),
    "rnn-sigmoid-bi": lambda: rnnkit.RNN(3, 5, activation="sigmoid", bidirectional=True),
    "rnn-relu-2": lambda: rnnkit.RNN(3, 5, activation="relu", num_layers=2),
    "rnn-callable": lambda: rnnkit.RNN(3, 5, activation=torch.nn.functional.softsign),
    "mingru-bi-mul": lambda: rnnkit.Recurrent(rnnkit.MinGRU(3, 5), bidirectional=True, merge="mul"),
    "minlstm-2": lambda: rnnkit.Recurrent(rnnkit.MinLSTM(3, 5), num_layers=2),
    "lstm-zoneout-dropout": lambda: rnnkit.LSTM(3, 5, num_layers=2, zoneout=0.3, dropout=0.5),
    "gru-time-major": lambda: rnnkit.GRU(3, 5, batch_first=False, bidirectional=True),
}


@pytest.mark.parametrize("name", LAYERS)
def test_layer_matches_torch_in_onnxruntime(name, tmp_path):
    _check_layer(LAYERS[name](), tmp_path)


@pytest.mark.parametrize(
    "make, op",
    [
        (lambda: rnnkit.LSTM(3, 5, bidirectional=True), "LSTM"),
        (lambda: rnnkit.LSTM(3, 5, peephole=True), "LSTM"),
        (lambda: rnnkit.GRU(3, 5), "GRU"),
        (lambda: rnnkit.RNN(3, 5, activation="sigmoid"), "RNN"),
        (lambda: rnnkit.LSTM(3, 5, layer_norm=True), "Loop"),
        (lambda: rnnkit.GRU(3, 5, reset_after=False), "Loop"),
        (lambda: rnnkit.Recurrent(rnnkit.MinGRU(3, 5)), "Loop"),
    ],
)
def test_plain_cells_use_onnx_operators_and_others_a_loop(make, op, tmp_path):
    path = to_onnx(make(), tmp_path / "m.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert op in ops
    assert not ops & ({"LSTM", "GRU", "RNN", "Loop"} - {op})


@pytest.mark.parametrize(
    "make",
    [
        lambda: rnnkit.LSTM(3, 5, bidirectional=True, num_layers=2),
        lambda: rnnkit.GRU(3, 5, bidirectional=True),
        lambda: rnnkit.RNN(3, 5, activation="tanh"),
    ],
)
def test_plain_cells_as_a_loop_match_torch(make, tmp_path):
    path = _check_layer(make(), tmp_path, ops="loop")
    assert "Loop" in {n.op_type for n in onnx.load(str(path)).graph.node}


def test_exported_whatever_the_backend_that_trained_it(tmp_path):
    # a layer that asks for rnnkit's fused engine (whose custom ops torch's exporters cannot see) exports
    # through the cell's own step: nothing of the engine is run or needed
    layer = rnnkit.LSTM(3, 5, layer_norm=True, backend="fused")
    _check_layer(layer, tmp_path)
    assert layer.requested_backend == "fused" and layer.training is False
    layer.train()
    to_onnx(layer, tmp_path / "again.onnx")
    assert layer.training, "to_onnx leaves the module's mode as it was"


def _stream(sess, x, chunks, state):
    outs, t = [], 0
    B = x.shape[0]
    for n in chunks:
        feeds = _feeds(x[:, t : t + n], torch.full((B,), n), state)
        got = sess.run(None, feeds)
        outs.append(got[0])
        state = tuple(torch.from_numpy(g) for g in got[1:])
        t += n
    return np.concatenate(outs, axis=1), state


@pytest.mark.parametrize(
    "make",
    [
        lambda: rnnkit.LSTM(3, 5, num_layers=2, layer_norm=True, proj_size=3),
        lambda: rnnkit.GRU(3, 5, num_layers=2),
        lambda: rnnkit.Recurrent(rnnkit.MinLSTM(3, 5)),
    ],
)
def test_streaming_chunk_by_chunk_equals_the_whole_sequence(make, tmp_path):
    layer = make().eval()
    sess = _session(to_onnx(layer, tmp_path / "s.onnx"))
    B, T = 3, 9
    x = torch.randn(B, T, 3)
    state = tuple(torch.randn_like(s) for s in _parts(layer.zeros_state(B)))
    whole = sess.run(None, _feeds(x, torch.full((B,), T), state))
    y, fin = _stream(sess, x, [4, 1, 4], state)
    np.testing.assert_allclose(y, whole[0], **TOL)
    for f, w in zip(fin, whole[1:]):
        np.testing.assert_allclose(f.numpy(), w, **TOL)
    y_ref, fin_ref = _reference(layer, x, state, None)
    np.testing.assert_allclose(y, y_ref.numpy(), **TOL)
    for f, r in zip(fin, fin_ref):
        np.testing.assert_allclose(f.numpy(), r.numpy(), **TOL)


# -- models --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pooling, encoder",
    [
        ("last", EncoderConfig("lstm", 6, num_layers=2, bidirectional=True)),
        ("mean", EncoderConfig("gru", 6, cell_options={"layer_norm": True})),
        ("max", EncoderConfig("minlstm", 6, bidirectional=True)),
        ("attention", EncoderConfig("lstm", 6, learn_initial_state=True, cell_options={"peephole": True})),
    ],
)
def test_classifier_matches_torch(pooling, encoder, tmp_path):
    cfg = ClassifierConfig(
        num_classes=3, vocab_size=20, embedding_dim=8, encoder=encoder, pooling=pooling, head_hidden=5
    )
    model = SequenceClassifier(cfg).eval()
    if model.encoder.initial_state is not None:
        with torch.no_grad():
            for p in model.encoder.initial_state:
                p.normal_()  # a learned start state is part of the graph
    sess = _session(to_onnx(model, tmp_path / "clf.onnx"))
    x, lengths = torch.randint(0, 20, (4, 7)), torch.tensor([7, 4, 1, 2])
    with torch.no_grad():
        ref = model(x, lengths)
    (got,) = sess.run(None, {"inputs": x.numpy(), "lengths": lengths.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), ref, **TOL)


def test_sentiment_net_with_subwords_takes_them_as_a_third_input(tmp_path):
    """The sentiment app's default model adds hashed character n-grams to each word: the export reads them
    (B, T, G) beside the word ids, with any number of n-grams per word, and equals torch."""
    from rnnkit.apps.sentiment.model import SentimentNet, SentimentNetConfig

    cfg = SentimentNetConfig(
        num_classes=2, vocab_size=20, embedding_dim=6, encoder=EncoderConfig("gru", 5, bidirectional=True),
        subword_buckets=30, pooling="mean+max",
    )  # fmt: skip
    model = SentimentNet(cfg).eval()
    sess = _session(to_onnx(model, tmp_path / "sent.onnx"))
    g = torch.Generator().manual_seed(0)
    for G in (1, 5):
        x, lengths = torch.randint(2, 20, (3, 6), generator=g), torch.tensor([6, 2, 4])
        sub = torch.randint(0, 31, (3, 6, G), generator=g)  # 0 = no n-gram in that slot
        with torch.no_grad():
            ref = model(x, lengths, sub)
        (got,) = sess.run(None, {"inputs": x.numpy(), "lengths": lengths.numpy(), "subwords": sub.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), ref, **TOL)


def test_export_run_of_a_subword_model_says_how_to_make_the_subwords(tmp_path):
    import json
    import zlib

    from rnnkit.apps.rundir import RunBuilder
    from rnnkit.apps.sentiment.model import SentimentNet, SentimentNetConfig
    from rnnkit.apps.sentiment.subword import Subwords
    from rnnkit.datasets import Vocabulary
    from rnnkit.models import save_model

    cfg = SentimentNetConfig(num_classes=2, vocab_size=12, embedding_dim=4, encoder=EncoderConfig("gru", 5),
                             subword_buckets=50, ngram_min=2, ngram_max=4)  # fmt: skip
    with RunBuilder(tmp_path, "s1") as run:
        save_model(SentimentNet(cfg).eval(), run.path)
        run.commit({"app": "sentiment", "name": "s1"})
    (path,) = export_run(tmp_path / "s1", tmp_path / "s1.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    rule = json.loads(meta["rnnkit.subwords"])
    assert (rule["buckets"], rule["ngram_min"], rule["ngram_max"]) == (50, 2, 4)
    # the rule as written, applied by hand, gives the rows the app's own encoder gives
    word = "unwatchable"
    w = f"<{word}>"
    grams = [w[i : i + n] for n in range(2, 5) for i in range(len(w) - n + 1)]
    by_hand = tuple(1 + zlib.crc32(g.encode("utf-8")) % rule["buckets"] for g in grams)
    sub = Subwords(Vocabulary.build(["a film"], level="word"), buckets=50, n_min=2, n_max=4)
    (ids,) = sub.encode([word])
    assert sub.rows(ids[0]) == by_hand
    # a fresh `rnnkit export` (no sentiment module imported yet) knows the app's model class: it failed with
    # "unknown model class 'SentimentNet'" until 5 Dec 2026 (this process had imported it above)
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rnnkit",
            "export",
            str(tmp_path / "s1"),
            "--out",
            str(tmp_path / "fresh.onnx"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and (tmp_path / "fresh.onnx").is_file(), done.stderr


def test_forecaster_matches_torch(tmp_path):
    model = SequenceRegressor(
        RegressorConfig(output_size=2, input_size=3, encoder=EncoderConfig("gru", 6, num_layers=2))
    ).eval()
    sess = _session(to_onnx(model, tmp_path / "reg.onnx"))
    x, lengths = torch.randn(3, 8, 3), torch.tensor([8, 5, 2])
    with torch.no_grad():
        ref = model(x, lengths)
    (got,) = sess.run(None, {"inputs": x.numpy(), "lengths": lengths.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), ref, **TOL)


@pytest.mark.parametrize(
    "encoder",
    [EncoderConfig("lstm", 10, num_layers=2, cell_options={"proj_size": 8}), EncoderConfig("mingru", 8)],
)
def test_language_model_streams_in_onnxruntime(encoder, tmp_path):
    lm = LanguageModel(
        LanguageModelConfig(vocab_size=30, embedding_dim=8, encoder=encoder, tie_embeddings=True)
    ).eval()
    sess = _session(to_onnx(lm, tmp_path / "lm.onnx"))
    names = ["h0", "c0"][: len(_parts(lm.encoder.zeros_state(1)))]
    B, T = 3, 8
    tokens, lengths = torch.randint(0, 30, (B, T)), torch.tensor([8, 5, 0])
    state = tuple(torch.randn_like(s) for s in _parts(lm.encoder.zeros_state(B)))
    with torch.no_grad():
        logits, fin = lm(tokens, state if len(state) == 2 else state[0], lengths)
    feeds = {"tokens": tokens.numpy(), "lengths": lengths.numpy()}
    feeds.update({n: s.numpy() for n, s in zip(names, state)})
    got = sess.run(None, feeds)
    torch.testing.assert_close(torch.from_numpy(got[0]), logits, **TOL)
    for g, f in zip(got[1:], _parts(fin)):
        torch.testing.assert_close(torch.from_numpy(g), f, **TOL)
    # token by token, carrying the state, as a generator would
    st = {n: s.numpy() for n, s in zip(names, state)}
    for t in range(T):
        out = sess.run(
            None,
            {
                "tokens": tokens[:1, t : t + 1].numpy(),
                "lengths": np.array([1]),
                **{n: v[:, :1] for n, v in st.items()},
            },
        )
        st = dict(zip(names, out[1:]))
        np.testing.assert_allclose(out[0][0, 0], logits[0, t].numpy(), **TOL)


@pytest.mark.parametrize(
    "attention, cell, bidirectional, copy",
    [
        ("bahdanau", "lstm", True, False),
        ("general", "gru", True, False),
        ("dot", "lstm", False, False),
        ("none", "minlstm", False, False),
        ("bahdanau", "gru", True, True),  # copy attention: the source ids travel with the decoder's inputs
    ],
)
def test_seq2seq_as_encoder_and_decoder_step_matches_greedy_decoding(
    attention, cell, bidirectional, copy, tmp_path
):
    opts = {"layer_norm": True} if cell == "lstm" else {}
    model = Seq2Seq(
        Seq2SeqConfig(
            src_vocab_size=20,
            tgt_vocab_size=15,
            embedding_dim=8,
            encoder=EncoderConfig(cell, 6, bidirectional=bidirectional),
            decoder=EncoderConfig(cell, 6, num_layers=2, cell_options=opts),
            attention=attention,
            attention_dim=5,
            copy_attention=copy,
        )
    ).eval()
    enc = _session(to_onnx(model, tmp_path / "enc.onnx", part="encoder"))
    dec = _session(to_onnx(model, tmp_path / "dec.onnx", part="decoder_step"))
    src, lengths = torch.randint(0, 20, (3, 7)), torch.tensor([7, 3, 1])
    env = dict(
        zip(
            [o.name for o in enc.get_outputs()],
            enc.run(None, {"src": src.numpy(), "src_lengths": lengths.numpy()}),
        )
    )
    inputs = [i.name for i in dec.get_inputs()]
    outputs = [o.name for o in dec.get_outputs()]
    prev = torch.full((3,), model.config.bos_id)
    with torch.no_grad():
        st = model.encode(src, lengths)
        for _ in range(4):  # greedy decoding, torch and onnxruntime side by side
            logits, st, weights = model._step(prev, st)
            got = dict(zip(outputs, dec.run(None, {"prev": prev.numpy(), **{k: env[k] for k in inputs[1:]}})))
            torch.testing.assert_close(torch.from_numpy(got["logits"]), logits, **TOL)
            if weights is not None:
                torch.testing.assert_close(torch.from_numpy(got["attention"]), weights, **TOL)
            env.update({k[: -len("_out")]: v for k, v in got.items() if k.endswith("_out")})
            prev = logits.argmax(-1)


def test_export_run_exports_a_saved_run(tmp_path):
    from rnnkit.apps.rundir import RunBuilder
    from rnnkit.models import save_model

    model = SequenceClassifier(
        ClassifierConfig(num_classes=2, vocab_size=12, embedding_dim=4, encoder=EncoderConfig("gru", 5))
    ).eval()
    with RunBuilder(tmp_path, "r1") as run:
        save_model(model, run.path)
        run.file("model.safetensors"), run.file("model.json")
        run.write_json("vocab.json", {"tokens": ["<pad>", "a", "b"]})
        run.commit({"app": "sentiment", "name": "r1"})
    (path,) = export_run(tmp_path / "r1", tmp_path / "out" / "r1.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["rnnkit.app"] == "sentiment" and '"<pad>"' in meta["rnnkit.vocab.json"]
    assert "rnnkit.left_out" not in meta and left_out_of_export(tmp_path / "r1") == []  # one network: nothing
    # what a run of several networks, a smoothing and a pool predicts with beside the exported network
    (tmp_path / "r1" / "members" / "1").mkdir(parents=True)
    (tmp_path / "r1" / "members" / "2").mkdir()
    (tmp_path / "r1" / "scaler.json").write_text(json.dumps({"mode": "es"}))
    (tmp_path / "r1" / "metrics.json").write_text(
        json.dumps({"mixture": {"with": "ets+arima", "share": 0.3}})
    )
    said = left_out_of_export(tmp_path / "r1")
    assert len(said) == 3 and "other 2 networks of its ensemble of 3" in said[0]
    assert "smoothing" in said[1] and "pool with ETS+ARIMA" in said[2]
    x, lengths = torch.randint(0, 12, (2, 5)), torch.tensor([5, 3])
    with torch.no_grad():
        ref = model(x, lengths)
    (got,) = _session(path).run(None, {"inputs": x.numpy(), "lengths": lengths.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), ref, **TOL)


def test_export_run_of_a_classifier_ensemble_is_the_mean_of_its_networks(tmp_path):
    """A classifier run of three networks (a sentiment run's default) exports all three in one graph: softmax of
    its ``logits`` is the mean of the networks' probabilities, as the run predicts; nothing is left out."""
    from rnnkit.apps.rundir import RunBuilder, member_dir
    from rnnkit.models import save_model

    config = ClassifierConfig(num_classes=3, vocab_size=12, embedding_dim=4, encoder=EncoderConfig("gru", 5))
    nets = []
    with RunBuilder(tmp_path, "ens") as run:
        for k in range(3):
            torch.manual_seed(k)
            nets.append(SequenceClassifier(config).eval())
            save_model(nets[-1], member_dir(run.path, k))
            rel = "" if k == 0 else f"members/{k}/"
            run.file(f"{rel}model.safetensors"), run.file(f"{rel}model.json")
        run.commit({"app": "sentiment", "name": "ens"})
    (path,) = export_run(tmp_path / "ens", tmp_path / "ens.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert (
        "rnnkit.left_out" not in meta and left_out_of_export(tmp_path / "ens", ensemble_in_graph=True) == []
    )
    x, lengths = torch.randint(0, 12, (4, 6)), torch.tensor([6, 2, 5, 1])
    with torch.no_grad():
        each = torch.stack([n(x, lengths).softmax(-1) for n in nets])
    (got,) = _session(path).run(None, {"inputs": x.numpy(), "lengths": lengths.numpy()})
    torch.testing.assert_close(torch.from_numpy(got).softmax(-1), each.mean(0), **TOL)
    assert (each[0] - each.mean(0)).abs().max() > 1e-3  # the others move it: not the first network alone
    with pytest.raises(rnnkit.RnnkitError, match="same config"):
        ClassifierEnsemble([nets[0], SequenceClassifier(replace(config, num_classes=2))])


def test_export_run_of_a_seq2seq_writes_encoder_and_decoder_step(tmp_path):
    from rnnkit.apps.rundir import RunBuilder
    from rnnkit.models import save_model

    with RunBuilder(tmp_path, "mt") as run:
        save_model(
            Seq2Seq(Seq2SeqConfig(embedding_dim=8, encoder=EncoderConfig("gru", 4, bidirectional=True))),
            run.path,
        )
        run.file("model.safetensors"), run.file("model.json")
        run.commit({"app": "translate", "name": "mt"})
    paths = export_run(tmp_path / "mt", tmp_path / "mt.onnx")
    assert [p.name for p in paths] == ["mt.encoder.onnx", "mt.decoder_step.onnx"]
    assert [i.name for i in _session(paths[1]).get_inputs()] == ["prev", "memory", "mask", "keys", "h", "c"]


def test_bad_targets_give_one_clear_error(tmp_path):
    with pytest.raises(rnnkit.RnnkitError, match="to_onnx exports"):
        to_onnx(torch.nn.LSTM(3, 5), tmp_path / "x.onnx")
    with pytest.raises(rnnkit.RnnkitError, match="unknown ops: expected one of"):
        to_onnx(rnnkit.GRU(3, 5), tmp_path / "x.onnx", ops="fast")
    with pytest.raises(rnnkit.RnnkitError, match="directory"):
        to_onnx(rnnkit.GRU(3, 5), tmp_path)
    with pytest.raises(rnnkit.RnnkitError, match="float32"):
        to_onnx(rnnkit.GRU(3, 5).double(), tmp_path / "x.onnx")
    with pytest.raises(rnnkit.RnnkitError, match="part= is for Seq2Seq"):
        to_onnx(rnnkit.GRU(3, 5), tmp_path / "x.onnx", part="encoder")
    with pytest.raises(rnnkit.RnnkitError, match="exports in parts"):
        to_onnx(Seq2Seq(Seq2SeqConfig()), tmp_path / "x.onnx")
    with pytest.raises(rnnkit.RnnkitError, match="does not exist"):
        export_run(tmp_path / "no-such-run", tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


# -- torch.export ----------------------------------------------------------------------------------------------
def test_torch_export_of_layers_matches_eager():
    B = torch.export.Dim("batch")
    layer = rnnkit.LSTM(3, 5, num_layers=2, bidirectional=True, layer_norm=True).eval()
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 0])
    state = layer.zeros_state(3)
    # the reference time loop: the batch stays dynamic, the number of steps is fixed by the example
    with rnnkit.use_backend("reference"):
        ep = torch.export.export(
            layer,
            (x, state, lengths),
            dynamic_shapes={"x": {0: B}, "state": ({1: B}, {1: B}), "lengths": {0: B}},
        )
    x2, lengths2 = torch.randn(4, 6, 3), torch.tensor([1, 6, 3, 0])
    state2 = tuple(torch.randn_like(s) for s in layer.zeros_state(4))
    y, fin = ep.module()(x2, state2, lengths2)
    y_ref, fin_ref = _reference(layer, x2, state2, lengths2)
    torch.testing.assert_close(y, y_ref, **TOL)
    for f, r in zip(fin, fin_ref):
        torch.testing.assert_close(f, r, **TOL)
    # torch's own kernels (backend "native") for a plain GRU
    gru = rnnkit.GRU(3, 5).eval()
    with rnnkit.use_backend("native"):
        ep = torch.export.export(gru, (x,))
    with torch.no_grad():
        torch.testing.assert_close(ep.module()(x)[0], _reference(gru, x, _parts(gru.zeros_state(3)), None)[0])


# -- the fuller grid -----------------------------------------------------------------------------------------
def _full_grid():
    cells = {
        "lstm": lambda: rnnkit.LSTMCell(3, 6),
        "lstm-peep": lambda: rnnkit.LSTMCell(3, 6, peephole=True),
        "lstm-ln": lambda: rnnkit.LSTMCell(3, 6, layer_norm=True),
        "lstm-proj": lambda: rnnkit.LSTMCell(3, 6, proj_size=2),
        "lstm-all": lambda: rnnkit.LSTMCell(3, 6, peephole=True, layer_norm=True, proj_size=4, cell_clip=0.5),
        "gru": lambda: rnnkit.GRUCell(3, 6),
        "gru-ln": lambda: rnnkit.GRUCell(3, 6, layer_norm=True),
        "gru-cho": lambda: rnnkit.GRUCell(3, 6, reset_after=False),
        "gru-cho-ln": lambda: rnnkit.GRUCell(3, 6, reset_after=False, layer_norm=True),
        "rnn-tanh": lambda: rnnkit.RNNCell(3, 6),
        "rnn-relu": lambda: rnnkit.RNNCell(3, 6, activation="relu"),
        "rnn-sigmoid": lambda: rnnkit.RNNCell(3, 6, activation="sigmoid"),
        "mingru": lambda: rnnkit.MinGRU(3, 6),
        "minlstm": lambda: rnnkit.MinLSTM(3, 6),
    }
    for name, cell in cells.items():
        for layers in (1, 3):
            for bi in (False, True):
                for ops in ONNX_OPS:
                    yield pytest.param(
                        cell, layers, bi, ops, id=f"{name}-L{layers}-{'bi' if bi else 'uni'}-{ops}"
                    )


@pytest.mark.slow
@pytest.mark.parametrize("cell, layers, bi, ops", list(_full_grid()))
def test_full_grid(cell, layers, bi, ops, tmp_path):
    layer = rnnkit.Recurrent(cell(), num_layers=layers, bidirectional=bi)
    _check_layer(layer, tmp_path, ops=ops, B=4, T=11)


def test_cli_export_of_a_trained_run_and_a_bad_run(tmp_path, capsys, monkeypatch):
    """``rnnkit train`` then ``rnnkit export``: the file loads in onnxruntime; a folder that is no run is one
    line and exit 2, and nothing is written."""
    from test_cli import FAST, NO_ARIMA, assert_one_line_error, run_cli, write_series

    runs = tmp_path / "runs"
    series = write_series(tmp_path / "s.csv")
    rc, _, err = run_cli(
        capsys, "train", "timeseries", "--data", series, "--runs-dir", runs, "--name", "ts", *FAST, *NO_ARIMA
    )
    assert rc == 0, err
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "export", runs / "ts")
    assert rc == 0, err
    assert out.strip() == "ts.onnx" and (tmp_path / "ts.onnx").is_file()
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "ts.onnx")).metadata_props}
    assert meta["rnnkit.app"] == "timeseries" and "rnnkit.scaler.json" in meta
    # the graph is the first of the five networks: what the run forecasts with beside it is said, and kept
    left_out = json.loads(meta["rnnkit.left_out"])
    assert any("ensemble of 5" in x for x in left_out) and any("pool with ETS" in x for x in left_out)
    assert err.startswith("note: the graph leaves out the other 4 networks of its ensemble of 5"), err
    (tmp_path / "empty").mkdir()
    rc, _, err = run_cli(capsys, "export", tmp_path / "empty", "--out", tmp_path / "x.onnx")
    assert_one_line_error(rc, err, "run.json")
    assert not (tmp_path / "x.onnx").exists()
    # without the onnx package (the `export` extra): one line that says how to get it, no file
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    rc, _, err = run_cli(capsys, "export", runs / "ts", "--out", tmp_path / "x.onnx")
    assert_one_line_error(rc, err, "needs the onnx package")
    assert not (tmp_path / "x.onnx").exists()
