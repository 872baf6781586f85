"""State encoders: SB3 features extractors that read the observation as a sequence.

MovieRec's observation is a flat vector, but it holds a sequence: the embeddings of the last
``L`` consumed items, oldest first, then their scaled ratings (``layout="frame"``, MovieRec-v0:
``L = frame_size``), and for the history environment also a 0/1 mask that marks real items
(``layout="history"``, MovieRecSeq-v0: padding at the front, the newest item last). SB3's
default ``FlattenExtractor`` hands it to an MLP as it is; these extractors first turn it into
``L`` vectors ``x_t = [e_t, r_t]`` and encode them:

* :class:`GRUEncoder`: a GRU over ``x_1..x_L``; the features are its last hidden state.
* :class:`AttentionEncoder`: ``x_t`` projected to ``width`` plus a learned position embedding,
  ``layers`` Transformer encoder layers (self-attention over the items, padding masked), and the
  newest item's output as the features (SASRec's read-out).

Use them through ``policy_kwargs``::

    make_agent("td3", env, policy_kwargs={"features_extractor_class": GRUEncoder,
                                          "features_extractor_kwargs": {"embedding_dim": 32}})

or ``make_agent(..., encoder="gru")``, which fills those in from the environment.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from recgym.errors import ConfigError

LAYOUTS = ("frame", "history")


def split_observation(
    observations: torch.Tensor, embedding_dim: int, layout: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, obs_dim)`` -> items ``(B, L, dim + 1)`` and padding mask ``(B, L)`` (True: pad).

    Raises:
        ConfigError: If the observation size does not fit the layout.
    """
    n = observations.shape[1]
    extra = 1 if layout == "frame" else 2
    length, rest = divmod(n, embedding_dim + extra)
    if rest or length < 1:
        raise ConfigError(
            f"An observation of size {n} does not hold L items of embedding_dim="
            f"{embedding_dim} in the {layout!r} layout (L x (dim + {extra}) values); check "
            "embedding_dim and layout."
        )
    emb = observations[:, : length * embedding_dim].reshape(-1, length, embedding_dim)
    ratings = observations[:, length * embedding_dim : length * (embedding_dim + 1)]
    x = torch.cat([emb, ratings.unsqueeze(-1)], dim=-1)
    if layout == "frame":
        pad = torch.zeros(observations.shape[0], length, dtype=torch.bool, device=x.device)
    else:
        pad = observations[:, length * (embedding_dim + 1) :] < 0.5
    return x, pad


class SequenceEncoder(BaseFeaturesExtractor):
    """What the encoders share: the observation read as ``L`` items (see the module docstring).

    Args:
        observation_space: The environment's (flat) observation space.
        embedding_dim: The item embedding dimension.
        layout: ``"frame"`` (MovieRec-v0) or ``"history"`` (with a mask channel).
        width: The number of features (the GRU's hidden size, the attention's model width).

    Raises:
        ConfigError: For an unknown layout, a size below 1, or an observation that does not
            hold whole items of ``embedding_dim``.
    """

    def __init__(
        self,
        observation_space: gym.spaces.Box,
        embedding_dim: int,
        layout: str = "frame",
        width: int = 128,
    ) -> None:
        """Check the arguments and count the items ``L`` of an observation."""
        if layout not in LAYOUTS:
            raise ConfigError(f"layout={layout!r}; choose from {list(LAYOUTS)}.")
        if embedding_dim < 1 or width < 1:
            raise ConfigError(f"embedding_dim={embedding_dim} and width={width} must be >= 1.")
        super().__init__(observation_space, features_dim=width)
        self.embedding_dim, self.layout = int(embedding_dim), layout
        probe = torch.zeros(1, int(observation_space.shape[0]))
        self.length = split_observation(probe, self.embedding_dim, layout)[0].shape[1]


class GRUEncoder(SequenceEncoder):
    """A GRU over the observation's items; features are its last hidden state.

    Takes :class:`SequenceEncoder`'s arguments (``width``: the GRU's hidden size).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Build the GRU."""
        super().__init__(*args, **kwargs)
        extra = 1 if self.layout == "frame" else 2  # the mask is an input: padding is visible
        self.gru = nn.GRU(self.embedding_dim + extra, self.features_dim, batch_first=True)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, obs_dim)`` -> ``(B, width)``."""
        x, pad = split_observation(observations, self.embedding_dim, self.layout)
        if self.layout == "history":
            x = torch.cat([x * (~pad).unsqueeze(-1), (~pad).unsqueeze(-1).float()], dim=-1)
        _, h = self.gru(x)
        return h[-1]


class AttentionEncoder(SequenceEncoder):
    """Self-attention over the observation's items; features are the newest item's output.

    Args:
        *args: :class:`SequenceEncoder`'s arguments (``width``: the model width).
        layers: Transformer encoder layers.
        heads: Attention heads (must divide ``width``).
        dropout: Dropout inside the layers.
        **kwargs: :class:`SequenceEncoder`'s arguments, by name.
    """

    def __init__(
        self, *args: Any, layers: int = 1, heads: int = 2, dropout: float = 0.1, **kwargs: Any
    ) -> None:
        """Build the projection, positions and encoder layers."""
        super().__init__(*args, **kwargs)
        width = self.features_dim
        if width % heads:
            raise ConfigError(f"heads={heads} must divide width={width}.")
        self.project = nn.Linear(self.embedding_dim + 1, width)
        self.position = nn.Parameter(torch.zeros(self.length, width))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """``(B, obs_dim)`` -> ``(B, width)``."""
        x, pad = split_observation(observations, self.embedding_dim, self.layout)
        h = self.project(x) + self.position
        pad = pad & ~pad[:, -1:]  # never mask every key of a row (an empty history)
        h = self.encoder(h, src_key_padding_mask=pad if self.layout == "history" else None)
        return self.norm(h[:, -1])


ENCODERS: dict[str, type[BaseFeaturesExtractor] | None] = {
    "mlp": None,
    "gru": GRUEncoder,
    "attention": AttentionEncoder,
}
