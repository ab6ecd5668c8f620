"""Train our Conditional DETR with the OFFICIAL Conditional DETR transformer swapped in.

A one-off check that the dense-attention stall on the embedded data (README, "Results on the
embedded data") is not a bug of our transformer: the official encoder and decoder
(github.com/Atten4Vis/ConditionalDETR, models/transformer.py + models/attention.py; not part of
this project, give a checkout with --official-root) replace ours inside the same pipeline
(backbone, neck, heads, criterion, data, schedule), then ``train_net.py`` runs as usual.

Two things are adapted at import, without editing the checkout: its torch-version checks pick
import paths that torch 2.x no longer has (shimmed), and its query sine embedding hard-codes 128
features per coordinate (a 256-wide model); for our 128-wide tiny model the constant becomes
hidden_dim / 2, as in our ``coordinate_sine_embedding``.

    python experiments/official_transformer_swap.py --official-root /path/to/ConditionalDETR \
        --config-file shapes/conditional_detr_tiny.py train.max_iter=800 train.eval_period=400 \
        train.init_checkpoint="" optimizer.params.lr_backbone_multiplier=1.0
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import runpy
import sys
import types

import torch
from torch import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_official(root: str, hidden_dim: int) -> types.ModuleType:
    """The official ``models.transformer`` module, adapted as the docstring says."""
    import torch.nn.modules.linear as linear

    linear._LinearWithBias = linear.NonDynamicallyQuantizableLinear
    sys.modules.setdefault("torch._overrides", torch.overrides)
    package = types.ModuleType("models")
    package.__path__ = [os.path.join(root, "models")]
    sys.modules["models"] = package
    for name in ("attention", "transformer"):
        path = os.path.join(root, "models", f"{name}.py")
        with open(path) as handle:
            source = handle.read()
        if name == "transformer":
            features = hidden_dim // 2
            source = source.replace("torch.arange(128,", f"torch.arange({features},")
            source = source.replace("/ 128)", f"/ {features})")
        spec = importlib.util.spec_from_loader(f"models.{name}", loader=None)
        module = importlib.util.module_from_spec(spec)
        module.__file__ = path
        sys.modules[f"models.{name}"] = module
        exec(compile(source, path, "exec"), module.__dict__)
    return sys.modules["models.transformer"]


class OfficialEncoder(nn.Module):
    """Our encoder interface (batch first) around the official (sequence first) encoder."""

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder

    def forward(self, *, src, pos, mask, **unused):
        out = self.encoder(src.transpose(0, 1), src_key_padding_mask=mask, pos=pos.transpose(0, 1))
        return out.transpose(0, 1)


class OfficialDecoder(nn.Module):
    """Our decoder interface around the official decoder (which makes its own references)."""

    def __init__(self, decoder: nn.Module, num_layers: int):
        super().__init__()
        self.decoder = decoder
        self.num_layers = num_layers

    def reference_from_pos(self, pos):
        return self.decoder.ref_point_head(pos).sigmoid()

    def forward(self, *, content, pos, memory, memory_mask, memory_pos, **unused):
        from detrdistill.modeling.transformers import DecoderRawOutput

        hidden, reference = self.decoder(
            content.transpose(0, 1),
            memory.transpose(0, 1),
            memory_key_padding_mask=memory_mask,
            pos=memory_pos.transpose(0, 1),
            query_pos=pos.transpose(0, 1),
        )
        references = reference[None].expand(self.num_layers, *reference.shape)
        return DecoderRawOutput(hidden, references, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-root", required=True, help="a ConditionalDETR checkout")
    args, rest = parser.parse_known_args()
    from detrdistill.modeling.meta_arch import conditional_detr

    build = conditional_detr.ConditionalDETR.__init__

    def swapped_init(self, **kwargs):
        build(self, **kwargs)
        official = _load_official(args.official_root, self.hidden_dim).Transformer(
            d_model=self.hidden_dim,
            nhead=self.decoder.layers[0].cross_attn.num_heads,
            num_encoder_layers=len(self.encoder.layers),
            num_decoder_layers=self.decoder.num_layers,
            dim_feedforward=self.decoder.layers[0].ffn.linear1.out_features,
            dropout=0.0,
            return_intermediate_dec=True,
        )
        self.encoder = OfficialEncoder(official.encoder)
        self.decoder = OfficialDecoder(official.decoder, self.decoder.num_layers)

    conditional_detr.ConditionalDETR.__init__ = swapped_init
    sys.argv = ["train_net.py", *rest]
    runpy.run_path(os.path.join(REPO, "train_net.py"), run_name="__main__")


if __name__ == "__main__":
    main()
