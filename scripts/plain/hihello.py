"""Lesson 1 in plain PyTorch: an RNN + linear layer on one-hot characters, "hihell" -> "ihello".

    python scripts/plain/hihello.py

The same lesson as `python scripts/train.py experiment=hihello`, without Lightning or Hydra: the
vocabulary is the text's characters in sorted order, the network a one-layer RNN of 8 units and
a linear head, trained with Adam (lr 0.1) for 50 steps on the one string.
"""

import torch
from torch import nn
from torch.nn import functional as F

torch.manual_seed(0)
text = "hihello"
chars = sorted(set(text))  # e, h, i, l, o: one one-hot column each
ids = torch.tensor([chars.index(c) for c in text])
x = F.one_hot(ids[:-1], len(chars)).float().unsqueeze(0)  # (1, 6, 5): "hihell"
y = ids[1:].unsqueeze(0)  # (1, 6): "ihello"

rnn = nn.RNN(len(chars), 8, batch_first=True)
head = nn.Linear(8, len(chars))
optimizer = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=0.1)

for _ in range(50):
    scores = head(rnn(x)[0])  # (1, 6, 5)
    loss = F.cross_entropy(scores.reshape(-1, len(chars)), y.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

predicted = "".join(chars[i] for i in head(rnn(x)[0]).argmax(-1)[0])
print(f"loss {loss.item():.4f}  predicted: {predicted}")
