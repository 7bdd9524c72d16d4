"""Neural-network layers of the latency predictors, one per module (PyG ``nn.conv`` style)."""

from trainer.models.layers.dgf import DenseGraphFlow
from trainer.models.layers.dgf_gat_ensemble import DGFGATEnsemble
from trainer.models.layers.gat import GatedGraphAttention
from trainer.models.layers.gcn import DirectedGraphConv
from trainer.models.layers.graph_encoder import GraphEncoder
from trainer.models.layers.hardware_embedding import HardwareEmbedding
from trainer.models.layers.mlp import MLP
from trainer.models.layers.op_hardware_embedding import OpHardwareEmbedding

__all__ = ["DGFGATEnsemble", "DenseGraphFlow", "DirectedGraphConv", "GatedGraphAttention", "GraphEncoder", "HardwareEmbedding", "MLP", "OpHardwareEmbedding"]
