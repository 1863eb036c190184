"""Load the official FireNet(+), E2VID(+), PIE-Net(-Lite) and CISTA-TC checkpoints, and convert them to
safetensors.

Accepted inputs:

* a ``.pth`` / ``.pth.tar`` file read with ``torch.load(weights_only=True)`` — either a bare state dict
  or a training checkpoint holding one under ``"state_dict"``. Files that pickle Python objects (for
  example ``firenet_plus.pth``, whose config is a pickled ``parse_config.ConfigParser``) are refused
  with a :class:`CheckpointError` naming the fix: never unpickle untrusted code;
* a ``.safetensors`` state dict;
* a folder written by :func:`convert_checkpoint` / ``save_pretrained`` (``config.json`` + safetensors).

Key namings: legacy rpg FireNet (``net.head.conv.conv2d`` ...), refactored FireNet of event_cnn_minimal
and EVREAL (``head.conv2d``, ``G1``, ``R1``, ``G2``, ``R2``, ``pred``), and E2VID of rpg_e2vid and
event_cnn_minimal (``unetrecurrent.head``, ``unetrecurrent.encoders.i`` ...), and PIE-Net of the
``event-pienet`` package (``model.stem.event_branch``, ``model.downs.i``, ``model.ups.i``, ``cal_k``;
see :data:`_PIENET_RENAMES`), and CISTA-TC of CISTA-EVREAL (``lista_blocks.k``, ``alpha.k``: one
shared block stored once per iteration, kept once). The hyperparameters (bins, channels, encoders,
residual / refine blocks, decoder type, batch norm) are read from the tensor shapes; PIE-Net's pool
sizes come with ``arch``, CISTA-TC's iteration count from its copies.

The official ``pienet.pth`` holds 12 tensors (``model.downs.{0,1,2}.out.mbconv_0``) of one refine
block per encoder that the ``event-pienet`` package's own PIE-Net never builds (``n_rep_dn [0, 0,
0]``, its non-strict load drops them). The weights were trained with them: with all tensors, PIE-Net
scores 0.0614 / 0.357 / 0.434 (MSE / SSIM / LPIPS) on 8 held-out synthetic sequences against
0.1417 / 0.297 / 0.542 without the refine blocks (ECD slider_depth, reported only: 0.0268 / 0.647 /
0.224 against 0.0420 / 0.520 / 0.334). So ``"pienet"`` loads every tensor of the file, like
``"pienet_lite"``, whose package model builds its refine blocks.

``arch`` picks what the weights cannot tell: the expected input normalisation and, for E2VID, the
output sigmoid. When it is ``None`` it follows the key naming: legacy rpg FireNet names mean
``"firenet"``, refactored FireNet names ``"firenet_plus"``, E2VID names ``"e2vid"`` (pass
``"e2vid_plus"`` for E2VID+ weights), PIE-Net names ``"pienet_lite"`` with two encoders and ``"pienet"``
with three, CISTA-TC names ``"cista_tc"``.
"""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from lase_e2v.atomic import atomic_path
from lase_e2v.errors import CheckpointError, ConfigError
from lase_e2v.models.baselines.cista import CistaTC
from lase_e2v.models.baselines.e2vid import E2VID
from lase_e2v.models.baselines.firenet import FireNet
from lase_e2v.models.baselines.pienet import PIENet

#: arch name -> (model class, config fixed by the arch)
ARCHITECTURES: dict[str, tuple[type, dict]] = {
    "firenet": (FireNet, {"voxel_normalization": "nonzero"}),
    "firenet_plus": (FireNet, {"voxel_normalization": "none"}),
    "e2vid": (E2VID, {"final_activation": "sigmoid", "voxel_normalization": "nonzero"}),
    "e2vid_plus": (E2VID, {"final_activation": "none", "voxel_normalization": "none"}),
    "pienet_lite": (PIENet, {"pool_sizes": (2, 2), "voxel_normalization": "none"}),
    "pienet": (PIENet, {"pool_sizes": (2, 2, 5), "voxel_normalization": "none"}),
    "cista_tc": (CistaTC, {"voxel_normalization": "nonzero"}),
}
MODEL_CLASSES = {cls.__name__: cls for cls in (FireNet, E2VID, PIENet, CistaTC)}
BaselineModel = FireNet | E2VID | PIENet | CistaTC

#: legacy rpg FireNet prefix -> refactored prefix (the two layouts compute the same graph)
_LEGACY_FIRENET_PREFIXES = {
    "net.head.conv.": "head.",
    "net.head.recurrent_block.": "G1.",
    "net.resblocks.0.conv.": "R1.",
    "net.resblocks.0.recurrent_block.": "G2.",
    "net.resblocks.1.": "R2.",
    "net.pred.": "pred.",
}
_E2VID_PREFIX = "unetrecurrent."
#: event-pienet names -> this package's (:mod:`lase_e2v.models.baselines.pienet`), applied in order
_PIENET_RENAMES = (
    (r"^model\.", ""),
    (r"^cal_k\.", "offset."),
    (r"^outc\.", "pred."),
    (r"^stem\.(event|frame)_branch\.", r"stem.\1_conv."),
    (r"^downs\.", "encoders."),
    (r"^ups\.", "decoders."),
    (r"\.mbd\.Gates\.mbconv\.0\.", ".lstm.gates.expand."),
    (r"\.mbd\.Gates\.mbconv\.1\.fc1\.", ".lstm.gates.excite.reduce."),
    (r"\.mbd\.Gates\.mbconv\.1\.fc2\.", ".lstm.gates.excite.expand."),
    (r"\.mbd\.Gates\.mbconv\.2\.", ".lstm.gates.project."),
    (r"\.mbd\.norm_h\.", ".lstm.hidden_norm."),
    (r"\.mbd\.norm_c\.", ".lstm.cell_norm."),
    (r"\.out\.mbconv_(\d+)\.", r".refine.\1."),
    (r"\.film\.film\.", ".film."),
    (r"\.ugate\.gate_conv\.", ".variance_gate."),
    (r"(mbconv\.)?convna\.0\.", "conv."),
    (r"(mbconv\.)?convna\.1\.", "norm."),
)
#: CISTA-TC's iteration-indexed copies of its one shared ISTA block and temporal weight
_CISTA_TIED = re.compile(r"^(lista_blocks\.\d+\.|alpha\.(\d+)$)")
StateDict = dict[str, torch.Tensor]


def _read_torch_file(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        refused = re.search(r"GLOBAL ([\w.]+)", str(error))
        if refused is None:  # garbage rather than a refused Python class
            raise CheckpointError(f"{path}: not a readable torch checkpoint (UnpicklingError)") from None
        raise CheckpointError(
            f"{path}: pickles the Python object {refused.group(1)}, which weights_only loading refuses; "
            "use a tensor-only state-dict file (e.g. firenet_plus_state_dict.pth), or once, in a trusted "
            "environment, save torch.load(path, weights_only=False)['state_dict'] to a new file"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(error).__name__})") from None


def _extract_state_dict(obj: object, path: Path) -> StateDict:
    """The tensors of a bare state dict or of a training checkpoint's ``"state_dict"``."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (or a checkpoint with 'state_dict')")
    return dict(obj)


def _rename(state: StateDict) -> tuple[StateDict, str, dict]:
    """Map any known naming onto this package's; return it, the arch the naming implies and any
    hyperparameters that only the naming tells (CISTA-TC's iteration count)."""
    if any(key.startswith("net.") for key in state):
        renamed = {}
        for key, value in state.items():
            prefix = next((p for p in _LEGACY_FIRENET_PREFIXES if key.startswith(p)), None)
            renamed[_LEGACY_FIRENET_PREFIXES[prefix] + key[len(prefix) :] if prefix else key] = value
        return renamed, "firenet", {}
    if any(key.startswith(_E2VID_PREFIX) for key in state):
        return {key.removeprefix(_E2VID_PREFIX): value for key, value in state.items()}, "e2vid", {}
    if "model.stem.event_branch.mbconv.convna.0.weight" in state:
        renamed = {}
        for key, value in state.items():
            for pattern, replacement in _PIENET_RENAMES:
                key = re.sub(pattern, replacement, key)
            renamed[key] = value
        state = renamed
    if "lista_blocks.0.D.conv2d.weight" in state:
        state, depth = _untie_cista(state)
        return state, "cista_tc", {"depth": depth}
    if "ista_block.D.conv2d.weight" in state:
        return state, "cista_tc", {}
    if "stem.event_conv.conv.weight" in state:
        arch = "pienet" if _count(state, r"encoders\.\d+\.film\.weight") == 3 else "pienet_lite"
        return state, arch, {}
    if "G1.reset_gate.weight" in state:
        return state, "firenet_plus", {}
    if "encoders.0.recurrent_block.Gates.weight" in state:
        return state, "e2vid", {}
    first = ", ".join(list(state)[:3])
    raise CheckpointError(
        f"unrecognised weights (first keys: {first}); expected FireNet (net.head..., or head.conv2d, G1...), "
        "E2VID (unetrecurrent.encoders...), PIE-Net (model.stem.event_branch...) or CISTA-TC (lista_blocks...) names"
    )


def _untie_cista(state: StateDict) -> tuple[StateDict, int]:
    """CISTA-TC's file stores its shared ISTA block and ``alpha`` once per iteration (tied copies);
    keep one of each (``ista_block.``, ``alpha``), after checking that the copies are one tensor.
    Returns the state and the number of iterations (the copies are all that tells it)."""
    renamed = {}
    for key, value in state.items():
        match = _CISTA_TIED.match(key)
        if match is None:
            renamed[key] = value
            continue
        rest = key[match.end():]
        shared, first = ("alpha", "alpha.0") if match.group(2) else ("ista_block." + rest, "lista_blocks.0." + rest)
        if first not in state or not torch.equal(value, state[first]):
            raise CheckpointError(f"{key} is not a copy of {first}; CISTA-TC shares one block over its iterations")
        renamed[shared] = value
    return renamed, _count(state, r"alpha\.\d+")


def _count(state: StateDict, pattern: str) -> int:
    """How many keys match ``pattern`` (one per numbered block)."""
    return sum(1 for key in state if re.fullmatch(pattern, key))


def _infer_pienet_config(state: StateDict, source: str) -> dict:
    stem = state.get("stem.event_conv.conv.weight")
    if stem is None or stem.ndim != 4:
        raise CheckpointError(
            f"{source}: weights lack stem.event_conv.conv.weight of shape (channels, bins, 3, 3)"
        )
    films = sorted(key for key in state if re.fullmatch(r"encoders\.\d+\.film\.weight", key))
    hidden = [int(state[key].shape[0]) // 2 for key in films]  # FiLM gives a scale and a shift per channel
    gates = state.get("encoders.0.lstm.gates.expand.conv.weight")
    return {
        "num_bins": int(stem.shape[1]),
        "channels": (int(stem.shape[0]), *hidden),
        "num_refine_blocks": _count(state, r"encoders\.0\.refine\.\d+\.conv\.weight"),
        "num_fuse_blocks": _count(state, r"decoders\.0\.fuse\.\d+\.conv\.weight"),
        "lstm_expansion": int(gates.shape[0] // gates.shape[1]) if gates is not None else 2,
    }


def _infer_config(state: StateDict, model_class: type, source: str) -> dict:
    """Hyperparameters read from tensor shapes (so non-default trainings load too)."""
    if model_class is PIENet:
        return _infer_pienet_config(state, source)
    if model_class is CistaTC:
        events, downsample = state.get("We.conv2d.weight"), state.get("W0.conv2d.weight")
        if events is None or downsample is None:
            raise CheckpointError(f"{source}: weights lack We.conv2d.weight or W0.conv2d.weight")
        return {"num_bins": int(events.shape[1]), "base_channels": int(downsample.shape[0])}
    head = state.get("head.conv2d.weight")
    if head is None or head.ndim != 4:
        raise CheckpointError(f"{source}: weights lack head.conv2d.weight of shape (channels, bins, k, k)")
    config = {
        "num_bins": int(head.shape[1]),
        "base_num_channels": int(head.shape[0]),
        "kernel_size": int(head.shape[2]),
    }
    if model_class is E2VID:
        config["num_encoders"] = _count(state, r"encoders\.\d+\.recurrent_block\.Gates\.weight")
        config["num_residual_blocks"] = _count(state, r"resblocks\.\d+\.conv1\.weight")
        config["use_upsample_conv"] = "decoders.0.conv2d.weight" in state
        config["norm"] = "BN" if "pred.norm_layer.weight" in state else None
    return config


def _load_into(model: torch.nn.Module, state: StateDict, source: str) -> None:
    """Strict load with a one-line :class:`CheckpointError` for missing, unexpected or mis-shaped weights."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected and not k.endswith("num_batches_tracked")]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            more = f" (+{len(keys) - 3} more)" if len(keys) > 3 else ""
            problems.append(f"{label} {', '.join(keys[:3])}{more}")
    if problems:
        raise CheckpointError(f"{source}: does not fit {type(model).__name__}: {'; '.join(problems)}")
    model.load_state_dict({k: state[k] for k in expected}, strict=True)


def model_from_state_dict(
    state: Mapping[str, torch.Tensor], arch: str | None = None, source: str = "weights"
) -> BaselineModel:
    """Build the model a state dict describes (any supported naming) and load it strictly."""
    if arch is not None and arch not in ARCHITECTURES:
        raise CheckpointError(f"unknown baseline arch '{arch}'; expected one of {', '.join(ARCHITECTURES)}")
    try:
        state, implied_arch, named_config = _rename(dict(state))
    except CheckpointError as error:
        raise CheckpointError(f"{source}: {error}") from None
    arch = arch or implied_arch
    model_class, fixed = ARCHITECTURES[arch]
    if model_class is not ARCHITECTURES[implied_arch][0]:
        raise CheckpointError(
            f"{source}: holds {ARCHITECTURES[implied_arch][0].__name__} weights, not '{arch}'"
        )
    try:
        model = model_class(**{**_infer_config(state, model_class, source), **named_config, **fixed})
    except ConfigError as error:
        raise CheckpointError(f"{source}: does not fit '{arch}' ({error})") from None
    _load_into(model, state, source)
    return model.eval()


def _load_folder(path: Path, arch: str | None) -> BaselineModel:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path}: folder has no config.json (expected a save_pretrained folder)")
    class_name = json.loads(config_file.read_text()).get("_class_name")
    model_class = MODEL_CLASSES.get(class_name)
    if model_class is None:
        raise CheckpointError(
            f"{config_file}: _class_name {class_name!r} is not one of {', '.join(MODEL_CLASSES)}"
        )
    if arch is not None and ARCHITECTURES.get(arch, (None,))[0] is not model_class:
        raise CheckpointError(f"{path}: holds a {class_name}, not '{arch}'")
    try:
        model = model_class.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: cannot load ({str(error).splitlines()[0][:120]})") from None
    return model.eval()


def load_baseline_checkpoint(path: str | Path, arch: str | None = None) -> BaselineModel:
    """Load a FireNet, E2VID, PIE-Net or CISTA-TC checkpoint (``.pth``, ``.safetensors`` or a folder) in eval mode.

    Args:
        path: the checkpoint file or ``save_pretrained`` folder.
        arch: ``"firenet"``, ``"firenet_plus"``, ``"e2vid"``, ``"e2vid_plus"``, ``"pienet_lite"``,
            ``"pienet"`` or ``"cista_tc"``; ``None`` follows the
            key naming (see the module docstring). A folder's config already says it; a
            given ``arch`` must then agree with the saved model class.

    Raises :class:`CheckpointError` (one line) for a missing/unreadable file, pickled objects, or weights
    that do not fit the architecture.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file or folder")
    if path.is_dir():
        return _load_folder(path, arch)
    if path.suffix == ".safetensors":
        try:
            state = load_file(path)
        except (SafetensorError, OSError) as error:
            raise CheckpointError(
                f"{path}: not a readable safetensors file ({type(error).__name__})"
            ) from None
    else:
        state = _extract_state_dict(_read_torch_file(path), path)
    return model_from_state_dict(state, arch, source=str(path))


def convert_checkpoint(src: str | Path, dst_dir: str | Path, arch: str | None = None) -> Path:
    """Convert a checkpoint to a ``save_pretrained`` folder (``config.json`` + safetensors); returns it.

    The folder appears only once complete (written through :func:`lase_e2v.atomic.atomic_path`).
    """
    model = load_baseline_checkpoint(src, arch)
    dst_dir = Path(dst_dir)
    with atomic_path(dst_dir) as tmp:
        model.save_pretrained(tmp)
    return dst_dir
