"""The nets: shapes from the data, the switches they expose."""

import pytest
import torch
from torch import nn

from dltrain.models.cnn import CNN
from dltrain.models.mlp import MLP


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28)])
def test_cnn_maps_any_image_shape_to_class_logits(shape):
    net = CNN(shape, num_classes=7, channels=[8, 16, 16])
    assert net(torch.randn(4, *shape)).shape == (4, 7)


def test_cnn_batchnorm_and_dropout_switches():
    with_bn = CNN((1, 8, 8), 10, channels=[8], batchnorm=True, dropout=0.3)
    without = CNN((1, 8, 8), 10, channels=[8], batchnorm=False, dropout=0.0)
    assert any(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in without.modules())
    assert [m.p for m in with_bn.modules() if isinstance(m, nn.Dropout)] == [0.3]


@pytest.mark.parametrize("activation", ["relu", "gelu", "silu", "tanh"])
def test_mlp_flattens_its_input_and_uses_the_activation(activation):
    net = MLP((1, 8, 8), num_classes=10, hidden=[32, 16], activation=activation, batchnorm=False)
    assert net(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    assert net.layers[1].in_features == 64
    assert not any(isinstance(m, nn.BatchNorm1d) for m in net.modules())
