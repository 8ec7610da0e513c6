"""torchvision's AlexNet layout, so that torchvision's weight files load key for key.

The same layers as the paper's builder makes from a `ModelConfig`, arranged as
`torchvision.models.alexnet` arranges them: modules numbered in order (features.0 ... classifier.6),
dropout on the inputs of fc6/fc7 (kept at p=0 when dropout is off, so the numbering holds), and an
adaptive average pool before the classifier. `paper_name` still maps "features.0" to "conv1".
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .alexnet import AlexNet
from .dropout import dropout


class TorchvisionAlexNet(AlexNet):
    def classifier_layers(self, width: int, first: int) -> OrderedDict:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for n, hidden in enumerate(self.cfg.fc_widths, start=first):
            layers[f"drop{n}"] = dropout(self.cfg.dropout, self.cfg.dropout_style)
            layers[f"fc{n}"] = nn.Linear(width, hidden)
            layers[f"relu{n}"] = nn.ReLU(inplace=True)
            width = hidden
        layers[f"fc{first + len(self.cfg.fc_widths)}"] = nn.Linear(width, self.num_classes)
        return layers

    def sequential(self, layers: OrderedDict) -> nn.Sequential:
        return nn.Sequential(*layers.values())

    def module_names(self, features: OrderedDict, classifier: OrderedDict) -> dict[str, str]:
        return {f"{part}.{i}": name for part, layers in (("features", features), ("classifier", classifier))
                for i, name in enumerate(layers)}
