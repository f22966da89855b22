"""rnnkit models: the four input/output structures of recurrent networks, each an encoder from the core plus a head.

=====================  ===============================================================================
structure              models
=====================  ===============================================================================
one-to-one             :class:`StreamingPredictor` (state carried between calls)
one-to-many            :class:`SequenceGenerator`
many-to-one            :class:`SequenceClassifier`, :class:`SequenceRegressor` (:class:`WindowRegressor`: feed-forward)
many-to-many aligned   :class:`SequenceTagger`, :class:`LanguageModel`
many-to-many           :class:`Seq2Seq` (attention), :class:`CTCRecognizer`
=====================  ===============================================================================

Every model is built from a typed config dataclass (``Model(config)``), round-trips through
``to_config()`` / ``from_config()``, saves as safetensors + JSON (:func:`save_model` / :func:`load_model`),
and speaks the trainer's protocol (``model.loss(batch, state) -> LossOutput``). Decoding strategies live in
:mod:`rnnkit.models.decoding`; the compiled sampling loop of language models in :mod:`rnnkit.models.fastgen`.
"""

from rnnkit.models._base import MODEL_REGISTRY, EncoderConfig, LossOutput, Model, config_from_dict
from rnnkit.models.attention import AdditiveAttention, LuongAttention, Pooling
from rnnkit.models.classifier import (
    ClassifierConfig,
    ClassifierEnsemble,
    RegressorConfig,
    SequenceClassifier,
    SequenceRegressor,
    WindowRegressor,
    WindowRegressorConfig,
)
from rnnkit.models.ctc import CTCConfig, CTCRecognizer, ctc_greedy_decode, ctc_prefix_beam_search
from rnnkit.models.decoding import DecodeResult, DecodingConfig, filter_logits, sample_tokens
from rnnkit.models.fastgen import FastGenerator, StreamBatch
from rnnkit.models.generator import GeneratorConfig, SequenceGenerator
from rnnkit.models.io import load_model, save_model
from rnnkit.models.lexicon import Lexicon, WordNgramLM, lexicon_beam_search
from rnnkit.models.lm import LanguageModel, LanguageModelConfig
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.models.tagger import SequenceTagger, StreamingConfig, StreamingPredictor, TaggerConfig
from rnnkit.models.tdnn import TimeDelayEncoder

__all__ = [
    "Model",
    "EncoderConfig",
    "LossOutput",
    "MODEL_REGISTRY",
    "config_from_dict",
    "StreamingPredictor",
    "StreamingConfig",
    "SequenceGenerator",
    "GeneratorConfig",
    "SequenceClassifier",
    "ClassifierConfig",
    "ClassifierEnsemble",
    "SequenceRegressor",
    "RegressorConfig",
    "WindowRegressor",
    "WindowRegressorConfig",
    "SequenceTagger",
    "TaggerConfig",
    "LanguageModel",
    "LanguageModelConfig",
    "Seq2Seq",
    "Seq2SeqConfig",
    "CTCRecognizer",
    "CTCConfig",
    "TimeDelayEncoder",
    "DecodingConfig",
    "DecodeResult",
    "filter_logits",
    "sample_tokens",
    "FastGenerator",
    "StreamBatch",
    "ctc_greedy_decode",
    "ctc_prefix_beam_search",
    "Lexicon",
    "WordNgramLM",
    "lexicon_beam_search",
    "AdditiveAttention",
    "LuongAttention",
    "Pooling",
    "save_model",
    "load_model",
]
