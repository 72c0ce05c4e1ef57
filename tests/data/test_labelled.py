from __future__ import annotations

from seqlab.data import PAD, LabelledTextDataModule


def test_sentiment_words_are_characters_padded_with_pad_zero():
    dm = LabelledTextDataModule(texts=["good", "bad", "worse", "so good"], labels=[1, 0, 0, 1])

    batch = next(iter(dm.val_dataloader()))

    assert dm.vocab.tokens[0] == PAD and dm.vocab.pad_index == 0
    assert dm.class_names == ["0", "1"]
    assert batch.lengths.tolist() == [4, 3, 5, 7]
    assert batch.inputs.shape == (4, 7)  # padded to the longest word of the batch
    assert dm.vocab.decode(batch.inputs[1]) == "bad" + PAD * 4
    assert batch.targets.tolist() == [1, 0, 0, 1]
