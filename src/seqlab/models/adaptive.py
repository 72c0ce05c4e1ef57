"""The adaptive softmax head (Grave et al. 2017): a large vocabulary scored by frequency.

``cutoffs`` cut a vocabulary ordered most frequent first into a shortlist and clusters:
``[2000, 10000]`` makes ids 0..1999 the shortlist, 2000..9999 the first cluster and the rest
the second. The head scores the shortlist words and one entry per cluster; a cluster's words
are scored only for the targets that fall in it, from a projection ``div_value`` times
narrower per cluster. log p(w) = log p_head(w) for a shortlist word, and
log p_head(cluster) + log p_cluster(w) for a word of a cluster. A step then costs the
shortlist's width, plus the rare words' clusters for the few targets among them, instead of
the whole vocabulary's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

DIV_VALUE = 4.0  # torch's: each cluster's projection 4 times narrower than the one before


def default_cutoffs(vocab_size: int) -> list[int]:
    """Two clusters from the vocabulary's size: at V / 16 and V / 4 (2,079 and 8,319 for
    WikiText-2's 33,278 words); fewer where the vocabulary is too small for them."""
    cuts = {max(1, vocab_size // 16), vocab_size // 4}
    return sorted(c for c in cuts if 0 < c < vocab_size)


def projection_sizes(features: int, clusters: int, div_value: float) -> list[int]:
    """Each cluster's projection width, as torch computes it: features // div_value^(i + 1)."""
    return [int(features // div_value ** (i + 1)) for i in range(clusters)]


class AdaptiveHead(nn.Module):
    """Dropout, then torch's ``nn.AdaptiveLogSoftmaxWithLoss`` over ``vocab_size`` words.

    ``forward`` gives the features the head reads (dropout applied): :meth:`loss`,
    :meth:`log_prob` and :meth:`predict` turn them into what training, evaluation and
    generation need. The head layer has a bias, as the fc head's linear layer does; the
    clusters' projections have none (torch's).
    """

    def __init__(
        self,
        features: int,
        vocab_size: int,
        cutoffs: Sequence[int],
        div_value: float = DIV_VALUE,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(
            features, vocab_size, list(cutoffs), div_value=div_value, head_bias=True
        )

    def forward(self, outputs: torch.Tensor) -> torch.Tensor:
        return self.dropout(outputs)  # (..., F): the head's input

    def loss(
        self, features: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean negative log-likelihood of ``targets``, and what accuracy reads.

        features: (N, F); targets: (N,) ids, every one scored (the adaptive softmax has no
        ignore_index: the caller leaves unscored rows out). The second result (N,), without
        gradient, is the target where it is the most likely word (:meth:`hits`) and another
        word where it is not: accuracy counts it as it counts the full softmax's argmax, but
        the most likely word itself is never looked for.
        """
        loss = self.softmax(features, targets).loss
        hit = self.hits(features.detach(), targets)
        return loss, torch.where(hit, targets, (targets + 1) % self.softmax.n_classes)

    @torch.no_grad()
    def hits(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N,) True where the target is the most likely word (ties aside).

        ``predict`` scores every cluster for each row whose most likely head entry is a
        cluster, which is most rows of a young model (a cluster of 20,000 rare words is more
        likely than any one word): several times the cost of the loss, on every training
        step. Here a word of a cluster is never more likely than its cluster's head entry, so
        the head alone decides most rows (a shortlist word beats the target); a cluster is
        scored only for the rows whose target it could beat.
        """
        softmax, short = self.softmax, self.softmax.shortlist_size
        log_head = F.log_softmax(softmax.head(features), dim=1)  # (N, shortlist + clusters)
        starts = targets.new_tensor(softmax.cutoffs[:-1])  # where each cluster's ids start
        cluster = (targets[:, None] >= starts).sum(1) - 1  # (N,): -1 in the shortlist
        column = torch.where(cluster < 0, targets, short + cluster)  # the target's head entry
        # the target's log-probability; for a cluster's word, its cluster's: an upper bound
        log_p = log_head.gather(1, column[:, None]).squeeze(1)
        best, best_word = log_head[:, :short].max(1)  # the most likely shortlist word
        alive = torch.where(cluster < 0, best_word == targets, best < log_p)
        for c, lo in enumerate(softmax.cutoffs[:-1]):  # a cluster's target: the best in it?
            rows = (alive & (cluster == c)).nonzero().squeeze(1)
            if len(rows):
                log_tail = F.log_softmax(softmax.tail[c](features[rows]), dim=1)
                inside = targets[rows] - lo
                log_p[rows] += log_tail.gather(1, inside[:, None]).squeeze(1)
                alive[rows] &= (log_tail.argmax(1) == inside) & (best[rows] < log_p[rows])
        for c in range(softmax.n_clusters):  # another cluster's best word beats the target?
            rows = (alive & (cluster != c) & (log_head[:, short + c] > log_p)).nonzero().squeeze(1)
            if len(rows):
                log_tail = F.log_softmax(softmax.tail[c](features[rows]), dim=1)
                rival = log_head[rows, short + c] + log_tail.max(1).values
                alive[rows] &= rival <= log_p[rows]
        return alive

    def log_prob(self, features: torch.Tensor) -> torch.Tensor:
        """(..., V) log-probabilities of every word: each cluster is scored for every row."""
        flat = features.reshape(-1, features.size(-1))  # (N, F): torch's layout
        return self.softmax.log_prob(flat).view(*features.shape[:-1], -1)

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """(...,) the most likely word, log_prob(...).argmax(-1): the clusters are scored only
        for the rows whose most likely head entry is a cluster."""
        flat = features.reshape(-1, features.size(-1))
        return self.softmax.predict(flat).view(features.shape[:-1])
