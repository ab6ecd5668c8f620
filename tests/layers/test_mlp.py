import unittest

import torch

from detrdistill.layers import MLP


class TestMLP(unittest.TestCase):
    def test_layers_and_relu(self):
        mlp = MLP(4, 8, 2, 3)
        self.assertEqual([tuple(m.weight.shape) for m in mlp.layers], [(8, 4), (8, 8), (2, 8)])
        x = torch.randn(5, 6, 4)
        h = torch.relu(mlp.layers[0](x))
        h = torch.relu(mlp.layers[1](h))
        torch.testing.assert_close(mlp(x), mlp.layers[2](h))
        single = MLP(4, 8, 3, 1)
        self.assertEqual(len(single.layers), 1)
        torch.testing.assert_close(single(x), single.layers[0](x))


if __name__ == "__main__":
    unittest.main()
