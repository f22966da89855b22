"""Image captioning (one-to-many): a small CNN trained from scratch and an attention recurrent decoder.

Data: emoji pictures drawn from Debian's Noto Color Emoji font with their CLDR names (``data="emoji"``,
split so that the test set holds skin-tone combinations never seen whole, or at random), strings of real
handwritten MNIST digits captioned with number words (``data="digits"``, split by digit image), or the
user's images with a CSV ``file,caption`` (several captions per image allowed). The CNN is trained from
scratch: no pretrained weights can be downloaded here. Its feature grid feeds :class:`rnnkit.models.Seq2Seq`
(a bidirectional recurrent layer over the grid cells, an attention decoder, greedy and beam search). Scores:
sacrebleu's BLEU-4 and chrF and exact match, next to nearest-neighbour captions (by pixels and by the CNN's
features) and the untrained model on the same split.

Like every application, it has the same parts in the same files: ``config`` (:class:`CaptionConfig`),
``data``, ``model`` (:class:`ImageCaptioner`), ``train``, ``report`` and ``use``. Example::

    from rnnkit.apps.caption import CaptionConfig, load, train
    result = train(CaptionConfig(data="digits", name="digits", epochs=5))
    result.metrics["test"]["beam"]["exact_match"]
    load(result.run).caption_files(["three_digits.png"], beam=3)
"""

from rnnkit.apps.caption.config import CaptionConfig
from rnnkit.apps.caption.data import APP, CaptionData, WordVocab, load_data, read_image, split
from rnnkit.apps.caption.model import CaptionerConfig, ImageCaptioner, build_model, caption_ids
from rnnkit.apps.caption.train import train
from rnnkit.apps.caption.use import Captioner, load

__all__ = [
    "APP",
    "CaptionConfig",
    "CaptionData",
    "Captioner",
    "CaptionerConfig",
    "ImageCaptioner",
    "WordVocab",
    "build_model",
    "caption_ids",
    "load",
    "load_data",
    "read_image",
    "split",
    "train",
]
