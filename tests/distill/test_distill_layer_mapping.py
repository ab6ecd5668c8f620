import unittest

from detrdistill.distill import map_decoder_layers


class TestMapDecoderLayers(unittest.TestCase):
    def test_equal_depths_identity(self):
        for mapping in ("last_aligned", "uniform"):
            self.assertEqual(map_decoder_layers(4, 4, mapping), [(i, i) for i in range(4)])

    def test_last_aligned(self):
        self.assertEqual(map_decoder_layers(3, 6), [(0, 1), (1, 3), (2, 5)])
        # (i+1) * 1.5 = 1.5, 3, 4.5, 6 -> half up 2, 3, 5, 6 -> minus 1
        self.assertEqual(map_decoder_layers(4, 6), [(0, 1), (1, 2), (2, 4), (3, 5)])
        self.assertEqual(map_decoder_layers(6, 3), [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2), (5, 2)])
        # clamped at 0 when the student is much deeper
        self.assertEqual(map_decoder_layers(6, 2)[0], (0, 0))
        for ls, lt in ((1, 6), (2, 7), (5, 3), (6, 2)):
            pairs = map_decoder_layers(ls, lt)
            self.assertEqual(pairs[-1], (ls - 1, lt - 1))
            self.assertEqual([s for s, _ in pairs], list(range(ls)))

    def test_uniform(self):
        self.assertEqual(map_decoder_layers(3, 6, "uniform"), [(0, 0), (1, 3), (2, 5)])
        self.assertEqual(map_decoder_layers(1, 6, "uniform"), [(0, 5)])
        self.assertEqual(map_decoder_layers(4, 2, "uniform"), [(0, 0), (1, 0), (2, 1), (3, 1)])

    def test_explicit_pairs(self):
        self.assertEqual(map_decoder_layers(2, 6, [[0, 2], (1, 5)]), [(0, 2), (1, 5)])
        with self.assertRaisesRegex(ValueError, r"model\.layer_mapping.*teacher layer 6"):
            map_decoder_layers(2, 6, [(0, 6)])
        with self.assertRaisesRegex(ValueError, r"model\.layer_mapping.*student layer -1"):
            map_decoder_layers(2, 6, [(-1, 0)])
        with self.assertRaisesRegex(ValueError, r"model\.layer_mapping"):
            map_decoder_layers(2, 6, [(0, 1, 2)])
        with self.assertRaisesRegex(ValueError, r"model\.layer_mapping"):
            map_decoder_layers(2, 6, [])
        with self.assertRaisesRegex(ValueError, r"model\.layer_mapping"):
            map_decoder_layers(2, 6, "first")
        with self.assertRaisesRegex(ValueError, "num_student"):
            map_decoder_layers(0, 6)


if __name__ == "__main__":
    unittest.main()
