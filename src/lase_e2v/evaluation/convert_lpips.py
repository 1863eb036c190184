"""Convert an LPIPS ``.pth`` state dict (``../shared/weights/lpips``) to ``.safetensors``, unchanged.

Run once to (re)create the bundled asset::

    python -m lase_e2v.evaluation.convert_lpips ../shared/weights/lpips/lpips_alex.pth \
        src/lase_e2v/assets/lpips/lpips_alex.safetensors

The tensors are copied bit for bit (checked after writing); the net is inferred from the keys and
the weights are loaded into :class:`~lase_e2v.evaluation.lpips.LPIPS` first, so a wrong file fails here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import CheckpointError
from lase_e2v.evaluation.lpips import load_lpips, read_state_dict


def convert_lpips(source: str | Path, destination: str | Path) -> Path:
    """Write ``source``'s tensors (contiguous float32) to ``destination`` as safetensors; returns it."""
    state = read_state_dict(source)
    net = "alex" if "features.28.weight" not in state else "vgg"
    load_lpips(net, source)  # raises CheckpointError if the keys do not match
    tensors = {name: tensor.to(torch.float32).contiguous() for name, tensor in state.items()}
    with atomic_path(destination) as temporary:
        save_file(tensors, str(temporary), metadata={"net": net, "source": Path(source).name})
        temporary.chmod(0o644)
        written = load_file(str(temporary))
        if any(not torch.equal(written[k], tensors[k]) for k in tensors):
            raise CheckpointError(f"{destination}: round trip changed the tensors")
    return Path(destination)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="lpips_alex.pth or lpips_vgg.pth")
    parser.add_argument("destination", type=Path, help="output .safetensors path")
    args = parser.parse_args(argv)
    print(convert_lpips(args.source, args.destination))


if __name__ == "__main__":
    main()
