"""Keras layers of S3TA, one module per idea (names from the paper)."""
from s3ta_tf.layers.spatial_basis import FourierSpatialBasis, fourier_basis
from s3ta_tf.layers.convlstm import ConvLSTMCell
from s3ta_tf.layers.lstm import LSTMCell
from s3ta_tf.layers.attention import SpatialAttention, L2KeyAttention
from s3ta_tf.layers.mlp import MLP
from s3ta_tf.layers.vision_core import ConvTorso, VisionCore
from s3ta_tf.layers.queries import QueryNetwork, FixedQueries
from s3ta_tf.layers.impala_resnet import ImpalaResNet
from s3ta_tf.layers.heads import PolicyValueHeads

__all__ = ["FourierSpatialBasis", "fourier_basis", "ConvLSTMCell", "LSTMCell", "SpatialAttention",
           "L2KeyAttention", "MLP", "ConvTorso", "VisionCore", "QueryNetwork", "FixedQueries",
           "ImpalaResNet", "PolicyValueHeads"]
