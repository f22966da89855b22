"""The language model's adaptive softmax (Grave et al. 2017), untied and tied to the embedding, against a
hand-written head + clusters in plain torch: full log-probabilities, the training loss and its gradients; and
every reader of the distribution (generation, the fast loop's fallback, ONNX) on an adaptive model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnkit._errors import RnnkitError
from rnnkit.models import DecodingConfig, EncoderConfig, LanguageModel, LanguageModelConfig
from rnnkit.models.fastgen import fast_support, python_tokens
from rnnkit.models.lm import adaptive_cutoffs

V, CUTS = 50, [6, 20]


def _model(dtype=torch.float64, **kw) -> LanguageModel:
    torch.manual_seed(0)
    cfg = dict(
        vocab_size=V, embedding_dim=12, encoder=EncoderConfig("lstm", 16), softmax="adaptive", cutoffs=CUTS
    )
    cfg.update(kw)
    return LanguageModel(LanguageModelConfig(**cfg)).to(dtype)


def _reference_log_probs(model: LanguageModel, h: torch.Tensor) -> torch.Tensor:
    """log p(w | h) for every w, computed from the weights by hand: (N, H) -> (N, V).

    The head scores the shortlist ``[0, c1)`` and one entry per cluster; a word of cluster ``i`` gets the
    cluster's head log-probability plus its log-softmax within the cluster. Untied: an ``H -> H / 4^(i+1)``
    projection, then the cluster's output matrix, neither with a bias. Tied: every word is scored by its
    embedding row (plus a bias) on the ``H -> E`` projection of ``h``.
    """
    bounds = CUTS + [V]
    if model.config.tie_embeddings:
        f = h @ model.proj.weight.t() + model.proj.bias  # (N, E)
        emb, bias, clu = model.embedding.weight, model.output.bias, model.output.cluster
        head_logits = torch.cat([f @ emb[: CUTS[0]].t() + bias[: CUTS[0]], f @ clu.weight.t() + clu.bias], 1)
        inners = [f @ emb[a:b].t() + bias[a:b] for a, b in zip(bounds, bounds[1:])]
    else:
        head = model.output.head
        head_logits = h @ head.weight.t() + head.bias
        inners = [(h @ proj.weight.t()) @ out.weight.t() for proj, out in model.output.tail]
    head_lp = F.log_softmax(head_logits, dim=-1)  # (N, c1 + clusters)
    parts = [head_lp[:, : CUTS[0]]]
    for i, logits in enumerate(inners):
        inner = F.log_softmax(logits, dim=-1)  # (N, size of cluster i)
        assert inner.shape[1] == bounds[i + 1] - bounds[i]
        parts.append(head_lp[:, CUTS[0] + i : CUTS[0] + i + 1] + inner)
    return torch.cat(parts, dim=1)


def _hidden(model, x):
    return model.encoder(model.embedding(x))[0]  # (B, T, H)


@pytest.mark.parametrize("tied", [False, True])
def test_log_probs_are_normalised_and_equal_the_hand_written_clusters(tied):
    model = _model(tie_embeddings=tied).eval()
    x = torch.randint(0, V, (3, 7))
    lp, _ = model(x)  # (B, T, V)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 7, dtype=torch.float64), rtol=0, atol=1e-12)
    ref = _reference_log_probs(model, _hidden(model, x).reshape(-1, 16)).view(3, 7, V)
    torch.testing.assert_close(lp, ref, rtol=1e-10, atol=1e-10)
    # one step with a carried state gives the same distribution as the full forward pass
    state = model.encoder.start_state(3, model.embedding.weight)
    for t in range(7):
        step_lp, state = model.step(x[:, t], state)
        torch.testing.assert_close(step_lp, ref[:, t], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("tied", [False, True])
def test_loss_and_gradients_equal_the_reference(tied):
    model = _model(tie_embeddings=tied).train()
    x = torch.randint(0, V, (4, 9))
    y = torch.randint(0, V, (4, 9))
    y[0, :3] = torch.tensor([0, CUTS[0] + 1, V - 1])  # one target in the head and in each cluster
    lengths = torch.tensor([9, 5, 9, 2])
    out = model.loss({"inputs": x, "targets": y, "lengths": lengths})
    grads = torch.autograd.grad(out.loss, list(model.parameters()))

    mask = torch.arange(9)[None, :] < lengths[:, None]
    h = model.encoder(model.embedding(x), None, lengths)[0][mask]  # (N, H)
    ref_lp = _reference_log_probs(model, h)
    ref = -ref_lp.gather(1, y[mask][:, None]).mean()
    ref_grads = torch.autograd.grad(ref, list(model.parameters()))
    assert out.count == int(lengths.sum())
    torch.testing.assert_close(out.loss, ref, rtol=1e-10, atol=1e-12)
    for name_param, g, r in zip(model.named_parameters(), grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-8, atol=1e-12, msg=name_param[0])
    # training reports no accuracy (it would cost a fifth of an update); evaluation counts the exact argmax of
    # the full distribution
    assert out.metrics == {}
    evaluated = model.eval().loss({"inputs": x, "targets": y, "lengths": lengths})
    assert evaluated.metrics["accuracy"] == float((ref_lp.argmax(-1) == y[mask]).sum())


@pytest.mark.parametrize("tied", [False, True])
def test_generation_reads_the_exact_distribution_and_the_fast_loop_falls_back(tied):
    model = _model(dtype=torch.float32, tie_embeddings=tied)
    ok, reason = fast_support(model)
    assert not ok and "adaptive" in reason
    # the Python decoding loop samples from exp(log p): the same tokens as sampling by hand
    g = torch.Generator().manual_seed(3)
    got = list(python_tokens(model, [1, 2, 3], 12, temperature=0.7, top_k=5, generator=g))
    ref = model.generate(
        torch.tensor([[1, 2, 3]]),
        DecodingConfig("sample", max_length=12, temperature=0.7, top_k=5),
        generator=torch.Generator().manual_seed(3),
    ).to_lists()[0]
    assert got == ref


@pytest.mark.parametrize("tied", [False, True])
def test_adaptive_config_is_checked_and_saved(tmp_path, tied):
    with pytest.raises(RnnkitError, match="cutoffs"):
        _model(cutoffs=[20, 6])
    with pytest.raises(RnnkitError, match="softmax"):
        _model(softmax="hierarchical")
    model = _model(dtype=torch.float32, tie_embeddings=tied)
    model.save(tmp_path / "m")
    back = LanguageModel.load(tmp_path / "m")
    x = torch.randint(0, V, (2, 5))
    torch.testing.assert_close(back.eval()(x)[0], model.eval()(x)[0])
    # the rule for the clusters: a head of min(2000, V / 8) tokens, then clusters five times larger
    assert adaptive_cutoffs(7632) == [954, 4770] and adaptive_cutoffs(44000) == [2000, 10000]


@pytest.mark.parametrize("tied", [False, True])
def test_onnx_export_gives_the_adaptive_log_probabilities(tmp_path, tied):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from rnnkit.export import to_onnx

    model = _model(dtype=torch.float32, tie_embeddings=tied).eval()
    to_onnx(model, tmp_path / "lm.onnx")
    x = torch.randint(0, V, (2, 6))
    zeros = torch.zeros(1, 2, 16).numpy()
    feeds = {"tokens": x.numpy(), "lengths": torch.tensor([6, 6]).numpy(), "h0": zeros, "c0": zeros}
    got = ort.InferenceSession(str(tmp_path / "lm.onnx")).run(None, feeds)[0]
    torch.testing.assert_close(torch.from_numpy(got), model(x)[0].detach(), rtol=1e-5, atol=1e-5)


def test_tied_clusters_share_the_embedding_and_predict_reads_the_exact_argmax(tmp_path):
    model = _model(tie_embeddings=True).eval()
    assert model.output.weight is model.embedding.weight  # one Parameter, saved once
    out = model.output
    f = torch.randn(40, 12, dtype=torch.float64)
    with torch.no_grad():  # make the clusters win the head for some rows, so predict scores those in full
        out.cluster.bias.copy_(torch.tensor([4.0, 6.0], dtype=torch.float64))
    head_best = out._head(f).argmax(-1)
    assert (head_best >= CUTS[0]).any() and (head_best < CUTS[0]).any()
    torch.testing.assert_close(out.predict(f), out.log_prob(f).argmax(-1), rtol=0, atol=0)
    # the loss scores a batch without any tail target, and one with only tail targets, as log_prob does
    for y in (torch.zeros(40, dtype=torch.long), torch.full((40,), V - 1)):
        torch.testing.assert_close(out(f, y).loss, -out.log_prob(f).gather(1, y[:, None]).mean())
    model.save(tmp_path / "m")
    back = LanguageModel.load(tmp_path / "m")
    assert back.output.weight is back.embedding.weight


@pytest.mark.parametrize("tied", [False, True])
def test_adaptive_argmax_is_the_argmax_of_the_full_distribution(tied):
    """The pruned argmax against the argmax of the full (N, V) log-probabilities (and, untied, against torch's
    own AdaptiveLogSoftmaxWithLoss.predict), on rows where the head, the first and the second cluster win."""
    model = _model(tie_embeddings=tied).eval()
    torch.manual_seed(1)
    h = torch.randn(400, 16, dtype=torch.float64) * 3
    f = model._features(h)
    with torch.no_grad():
        # push some rows' head entries towards each cluster so that every branch is taken
        cluster_bias = model.output.cluster.bias if tied else model.output.head.bias[CUTS[0] :]
        cluster_bias.copy_(torch.tensor([5.0, 5.0] if tied else [3.0, 3.0], dtype=torch.float64))
        full = model.output.log_prob(f)
        got = model._predict(f)
        if not tied:
            torch.testing.assert_close(got, model.output.predict(f), rtol=0, atol=0)
    torch.testing.assert_close(got, full.argmax(-1), rtol=0, atol=0)
    bounds = torch.tensor(CUTS)
    where = torch.bucketize(got, bounds, right=True)
    assert set(where.tolist()) == {0, 1, 2}  # the head and both clusters hold some of the argmaxes
