"""Turning a trained network's scores into what a user reads: strings and labels."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence

from seqlab.data.vocab import Vocab
from seqlab.models import RecurrentNet


@dataclass(frozen=True)
class Prediction:
    text: str  # the input
    predicted: str  # the predicted string, or the predicted class name
    target: str  # what the data says it should be
    probability: float | None = None  # of the predicted class (classification only)

    @property
    def correct(self) -> bool:
        return self.predicted == self.target


def _device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


@torch.no_grad()
def predict_next(net: RecurrentNet, vocab: Vocab, text: str, window: int | None = None) -> str:
    """The most likely next character after every prefix of ``text`` (``len(text)`` characters).

    A model trained on windows of ``window`` characters reads a longer text the way it was
    trained: the first window in full, then each later window's last step (the lesson's way).
    """
    ids = vocab.encode(text).long().to(_device(net))
    windows = ids[None] if window is None or len(ids) <= window else ids.unfold(0, window, 1)
    best = net.predict(net(windows)[0])  # (N, W)
    return vocab.decode(torch.cat([best[0], best[1:, -1]]))


@torch.no_grad()
def classify(
    net: RecurrentNet, vocab: Vocab, class_names: Sequence[str], texts: Sequence[str]
) -> list[tuple[str, float]]:
    """The predicted class name and its probability for each text, in one padded batch."""
    # an unseen word is <unk> where the vocabulary has one (a word model); else an error
    sequences = [vocab.encode(text, unknown="unk").long() for text in texts]
    lengths = torch.tensor([len(s) for s in sequences])
    pad = vocab.pad_index if vocab.pad_index is not None else 0
    inputs = pad_sequence(sequences, batch_first=True, padding_value=pad).to(_device(net))
    probabilities = net(inputs, lengths)[0].softmax(-1)  # (B, C)
    best, index = probabilities.max(-1)
    return [(class_names[i], p) for i, p in zip(index.tolist(), best.tolist(), strict=True)]


@torch.no_grad()
def generate(
    net: RecurrentNet,
    prompt: torch.Tensor,
    length: int,
    banned: Sequence[int] = (),
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Iterator[int]:
    """Continue ``prompt`` (1-D token ids) by ``length`` tokens, yielding each as it is drawn.

    The prompt is read once; each new token is then fed with the carried state, so a step costs
    one RNN step. ``banned`` ids (padding, unknown) are never drawn.
    """
    device = _device(net)
    outputs, state = net(prompt.long().to(device)[None])  # (1, T, V), or (1, T, F) features
    for _ in range(length):
        # (V,) scores of the next token (the adaptive head's log-probabilities: the same
        # distribution), in float64: a temperature as small as 1e-45 scales them without
        # overflow (the draw is then the greedy one)
        logits = net.scores(outputs[0, -1]).double() / (1.0 if greedy else temperature)
        logits[list(banned)] = float("-inf")  # after the scaling: inf / inf would be NaN
        if greedy:
            token = logits.argmax()
        else:
            if top_k is not None and top_k < logits.numel():
                kth = logits.topk(top_k).values[-1]
                logits[logits < kth] = float("-inf")
            probabilities = logits.softmax(-1).cpu()
            token = torch.multinomial(probabilities, 1, generator=generator)[0]
        yield int(token)
        outputs, state = net(token.view(1, 1).to(device), state=state)
