"""Neural-network layers of the latency predictors, one per module (PyG ``nn.conv`` style)."""

from trainer.models.layers.gcn import DirectedGraphConv
from trainer.models.layers.graph_encoder import GraphEncoder
from trainer.models.layers.hardware_embedding import HardwareEmbedding
from trainer.models.layers.mlp import MLP

__all__ = ["DirectedGraphConv", "GraphEncoder", "HardwareEmbedding", "MLP"]
