"""Networks: plain torch.nn.Modules built from (input_shape, num_classes, **hyperparameters)."""
