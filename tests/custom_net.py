"""A user's own network, defined outside dltrain: imported by `model.net._target_`."""

from torch import nn


class TinyNet(nn.Module):
    """Flatten and one linear layer; proves dltrain passes input_shape and num_classes."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        features = 1
        for size in input_shape:
            features *= size
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(features, num_classes))

    def forward(self, x):
        return self.layers(x)
