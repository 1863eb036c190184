"""Captioned synthetic scenes from still photos (coco_mini): camera motion, cut-outs, lighting.

A scene is one background photo under a smooth random camera motion (translation, rotation,
zoom) plus 0..K foreground objects, each a soft-edged ellipse or polygon cut from another photo
and moving on its own. Lighting adds a global exposure (normal / dark / bright), optionally a
static illumination field of high dynamic range (``hdr``), and a slow global brightness drift.

Photometry (``photometry``, default ``"linear"``): the photos' sRGB values are decoded to linear
intensity (the sRGB transfer function) before anything else, because both a DVS pixel (log of the
photocurrent) and a DAVIS APS frame (the frames real datasets score against) respond to linear
irradiance; APS frames are therefore darker and higher in contrast than the same scene as a photo
(ECD slider_depth's frames average 0.23, COCO photos 0.44 as sRGB and about 0.22 linearised), and
a log-intensity edge is about 2.2 times stronger. ``"srgb"`` uses the encoded values as intensity,
as ESIM and v2e do with video frames. Colour is reduced to ITU-R BT.601 luma, except in colour
mode (``color=True``): the scene stays RGB, each channel decoded to linear the same way, and the
simulator sees it through a Bayer filter (:func:`~lase_e2v.simulate.dataset.simulate_scene`).

Two images come out of a scene at any time: the ``radiance`` the event sensor sees (exposure and
illumination field included, may exceed 1) and the ``target`` a reconstruction should produce
(the scene under the drifting light with the illumination field removed and a *display* exposure
``display_gain = gain ** 0.35`` in place of the sensor's exposure ``gain``, clipped to [0, 1]). Dark
scenes therefore look dark and bright ones bright, but less so than the sensor sees them (an
auto-exposure that compensates part of the light), and an HDR scene looks evenly lit. The two agree
in log intensity up to a static offset, so events and targets are consistent; what differs in dark
/ HDR scenes is only what a real sensor does differently there (lin-log response, shot noise, slower
photoreceptor). Since events carry no absolute brightness, a dark target can only be told from a
normal one by the caption: :func:`scene_words` names the lighting (and the camera's speed) so that
the captions say it (LaSe-E2V's prompt editing, "at night, dark" vs "bright daylight").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lase_e2v.errors import ConfigError, EventFormatError
from lase_e2v.events.color import to_luma
from lase_e2v.simulate.motion import CONSTANT, Layer, LayerMotion, SmoothSignal, composite, max_displacement

LIGHTING_KINDS = ("normal", "dark", "bright", "hdr")
#: how often :func:`random_lighting` draws each kind (training can restore this mix: ``lighting_balance``)
LIGHTING_SHARES = {"normal": 0.5, "dark": 0.2, "bright": 0.1, "hdr": 0.2}
PHOTOMETRY = ("linear", "srgb")
#: words added to a scene's captions per lighting kind (normal lighting adds none, like real captions)
LIGHTING_WORDS = {"normal": (), "dark": ("at night", "dark"), "bright": ("bright daylight",),
                  "hdr": ("high dynamic range",)}
#: camera speeds (px/s, the scene's ``camera_max_speed_px_s``) at and above / at and below which the
#: captions say "fast motion" / "slow motion"
FAST_MOTION_PX_S, SLOW_MOTION_PX_S = 200.0, 50.0
#: how much of the sensor exposure the target keeps (``display_gain = gain ** DISPLAY_EXPOSURE_POWER``)
DISPLAY_EXPOSURE_POWER = 0.35


# -- photos ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Photo:
    """One captioned photo: ``coco_id``, its file and its human captions (whitespace stripped)."""

    coco_id: int
    path: Path
    captions: tuple[str, ...]

    def load_gray(self, photometry: str = "linear") -> np.ndarray:
        """The photo as BT.601 luma of linear (``"linear"``) or sRGB-encoded (``"srgb"``) values,
        float32 ``(H, W)`` in [0, 1] (cached)."""
        if photometry not in PHOTOMETRY:
            raise ConfigError(f"photometry '{photometry}' unknown; choose from {PHOTOMETRY}")
        return _load_gray(self.path, photometry)

    def load_rgb(self, photometry: str = "linear") -> np.ndarray:
        """The photo's RGB, linear (``"linear"``) or sRGB-encoded (``"srgb"``), float32 ``(H, W, 3)`` in
        [0, 1] (cached)."""
        if photometry not in PHOTOMETRY:
            raise ConfigError(f"photometry '{photometry}' unknown; choose from {PHOTOMETRY}")
        return _load_rgb(self.path, photometry)

    def load(self, photometry: str = "linear", color: bool = False) -> np.ndarray:
        """:meth:`load_rgb` if ``color``, else :meth:`load_gray`."""
        return self.load_rgb(photometry) if color else self.load_gray(photometry)


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1): encoded [0, 1] -> linear [0, 1]."""
    return np.where(values <= 0.04045, values / 12.92, ((values + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _read_rgb(path: Path, photometry: str) -> np.ndarray:
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as error:
        raise EventFormatError(f"{path}: not a readable image ({error})") from None
    return srgb_to_linear(pixels) if photometry == "linear" else pixels


_load_rgb = lru_cache(maxsize=32)(_read_rgb)


@lru_cache(maxsize=32)
def _load_gray(path: Path, photometry: str) -> np.ndarray:
    return to_luma(_read_rgb(path, photometry)).astype(np.float32)


def load_photos(coco_dir: str | Path) -> list[Photo]:
    """The photos of a coco_mini-style folder: ``captions.json`` (list of ``{file, coco_id, captions}``)
    and ``images/``. Captions are stripped of surrounding whitespace and inner newlines."""
    coco_dir = Path(coco_dir)
    index = coco_dir / "captions.json"
    if not index.is_file():
        raise ConfigError(f"{coco_dir}: no captions.json; expected a coco_mini folder (captions.json + images/)")
    try:
        records = json.loads(index.read_text())
        photos = [
            Photo(
                int(record["coco_id"]),
                coco_dir / "images" / record["file"],
                tuple(" ".join(c.split()) for c in record["captions"] if c.strip()),
            )
            for record in records
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise EventFormatError(f"{index}: expected a list of {{file, coco_id, captions}} records ({error})") from None
    missing = [p.path for p in photos if not p.path.is_file()]
    if missing:
        raise EventFormatError(f"{index}: image {missing[0]} is missing")
    if not photos:
        raise EventFormatError(f"{index}: no photos listed")
    return photos


def split_photos(photos: list[Photo], val_fraction: float) -> dict[str, list[Photo]]:
    """Train / val split by source photo, stable across runs and seeds: photos are ordered by a hash
    of their id and the first ``ceil(val_fraction * n)`` go to val (at least one if ``val_fraction > 0``)."""
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ordered = sorted(photos, key=lambda p: hashlib.sha256(str(p.coco_id).encode()).hexdigest())
    num_val = int(np.ceil(val_fraction * len(ordered)))
    if num_val >= len(ordered):
        raise ConfigError(f"val_fraction {val_fraction} leaves no training photo out of {len(ordered)}")
    return {"train": ordered[num_val:], "val": ordered[:num_val]}


# -- image helpers -------------------------------------------------------------------------------
def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased resize of a float image ``(h, w)`` or ``(h, w, 3)`` to ``size = (height, width)``
    (PIL, box filter when shrinking, so fine texture does not alias into flicker events)."""
    if image.ndim == 3:
        return np.stack([resize(image[..., c], size) for c in range(image.shape[2])], axis=-1)
    height, width = size
    shrinking = height < image.shape[0] and width < image.shape[1]
    filter_ = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((width, height), filter_))


def soft_mask(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Random ellipse or star-shaped polygon filling ``size = (h, w)``, soft edges: float32 in [0, 1].

    Drawn at 4x and box-downsampled (antialiasing), then blurred by a 0.5..2 px Gaussian.
    """
    height, width = size
    supersample = 4
    canvas = Image.new("L", (width * supersample, height * supersample), 0)
    draw = ImageDraw.Draw(canvas)
    w, h = width * supersample - 1, height * supersample - 1
    if rng.random() < 0.5:
        draw.ellipse((0, 0, w, h), fill=255)
    else:
        count = int(rng.integers(5, 11))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = rng.uniform(0.55, 1.0, count)
        points = [(w / 2 * (1 + r * np.cos(a)), h / 2 * (1 + r * np.sin(a))) for a, r in zip(angles, radii)]
        draw.polygon(points, fill=255)
    mask = canvas.resize((width, height), Image.Resampling.BOX).filter(
        ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0)))
    )
    return np.asarray(mask, dtype=np.float32) / 255.0


def adjust_tone(image: np.ndarray, gamma: float, contrast: float) -> np.ndarray:
    """``mean + contrast * (image**gamma - mean)``, clipped to [0, 1] (texture variety per scene)."""
    toned = image**gamma
    mean = float(toned.mean())
    return np.clip(mean + contrast * (toned - mean), 0.0, 1.0).astype(np.float32)


# -- lighting ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Lighting:
    """Exposure ``gain``, optional static ``illumination`` field (H, W) and a log-brightness drift;
    ``display_gain`` is the exposure of the target (module docstring)."""

    kind: str
    gain: float
    log_drift: SmoothSignal
    illumination: np.ndarray | None = None
    display_gain: float = 1.0

    def target(self, reflectance: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """What a reconstruction should show: ``(N, H, W)`` (or ``(N, H, W, 3)``, like ``reflectance``)
        float32 in [0, 1]."""
        drift = self._drift(t_s, reflectance.ndim)
        return np.clip(reflectance * (drift * np.float32(self.display_gain)), 0.0, 1.0)

    def radiance(self, reflectance: np.ndarray, t_s: np.ndarray) -> np.ndarray:
        """What the sensor sees: shaped like ``reflectance``, float, 1.0 = the white of a normal exposure.
        The light is white: the same on every colour channel."""
        drift = self._drift(t_s, reflectance.ndim)
        if self.illumination is None:
            return reflectance * (self.gain * drift)
        field = self.illumination if reflectance.ndim == 3 else self.illumination[..., None]
        return reflectance * (self.gain * drift * field)

    def _drift(self, t_s: np.ndarray, ndim: int) -> np.ndarray:
        """``exp(log_drift(t))`` shaped to broadcast over ``ndim``-dimensional frames ``(N, ...)``."""
        return np.exp(self.log_drift(t_s)).astype(np.float32).reshape(-1, *([1] * (ndim - 1)))

    def describe(self) -> dict:
        info = {"kind": self.kind, "gain": self.gain, "display_gain": self.display_gain,
                "drift_max_log_speed": self.log_drift.max_speed}
        if self.illumination is not None:
            info["illumination_range"] = float(self.illumination.max() / self.illumination.min())
        return info


def random_lighting(rng: np.random.Generator, size: tuple[int, int]) -> Lighting:
    """Normal (50%), dark (20%, gain 0.03..0.25), bright (10%, gain 1.5..4) or HDR (20%: a smooth
    illumination field spanning 8..40x, a soft spotlight on a gradient); 60% get a brightness drift
    of up to 0.6 log units per second. Dark and bright targets keep part of the exposure
    (``display_gain``, module docstring)."""
    kind = str(rng.choice(LIGHTING_KINDS, p=[LIGHTING_SHARES[k] for k in LIGHTING_KINDS]))
    gain = {"normal": 1.0, "dark": rng.uniform(0.03, 0.25), "bright": rng.uniform(1.5, 4.0), "hdr": 1.0}[kind]
    drift = SmoothSignal.random(rng, rng.uniform(0.0, 0.6), frequency_range_hz=(0.1, 1.0)) if rng.random() < 0.6 else CONSTANT
    illumination = None
    if kind == "hdr":
        height, width = size
        v, u = np.mgrid[0:height, 0:width] / max(size)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (u * np.cos(angle) + v * np.sin(angle)).astype(np.float32)
        cx, cy, radius = rng.uniform(0, width / max(size)), rng.uniform(0, height / max(size)), rng.uniform(0.1, 0.4)
        spot = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * radius**2)).astype(np.float32)
        shape = ramp - ramp.min() + 2 * spot
        shape = (shape - shape.min()) / (shape.max() - shape.min())
        illumination = np.exp(np.log(rng.uniform(8, 40)) * (shape - 1)).astype(np.float32)  # in [1/range, 1]
    display_gain = float(gain) ** DISPLAY_EXPOSURE_POWER if kind in ("dark", "bright") else 1.0
    return Lighting(kind, float(gain), drift, illumination, display_gain)


def lighting_kind(record: dict) -> str | None:
    """A make-dataset manifest record's ``scene.lighting.kind`` (None in folders written before it was
    recorded)."""
    lighting = (record.get("scene") or {}).get("lighting") or {}
    return lighting.get("kind") if isinstance(lighting, dict) else None


def scene_words(info: dict) -> tuple[str, ...]:
    """Caption words that say how a scene was rendered: its lighting (:data:`LIGHTING_WORDS`) and the
    camera's speed ("fast motion" / "slow motion", :data:`FAST_MOTION_PX_S`), from ``Scene.info``."""
    words = list(LIGHTING_WORDS[info["lighting"]["kind"]])
    speed = info["camera_max_speed_px_s"]
    if speed >= FAST_MOTION_PX_S:
        words.append("fast motion")
    elif speed <= SLOW_MOTION_PX_S:
        words.append("slow motion")
    return tuple(words)


def caption_with_words(sentence: str, words: tuple[str, ...] | list[str]) -> str:
    """``"A cat on a sofa", ("at night", "dark")`` -> ``"A cat on a sofa, at night, dark"``; a sentence
    without words is returned unchanged, an empty sentence gives the words alone."""
    parts = [sentence.strip().rstrip(".")] if sentence.strip() else []
    return ", ".join(parts + list(words)) if words else sentence


# -- scenes --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Look:
    """How bright and contrasted a scene looks, apart from its content and motion: the photo's tone
    (``gamma``, ``contrast``, :func:`adjust_tone`) and the :class:`Lighting`. Handing a scene's look to
    :func:`random_scene` redraws everything else (``make_dataset(keep_lighting=True)``)."""

    gamma: float
    contrast: float
    lighting: Lighting


@dataclass(frozen=True, eq=False)
class Scene:
    """A renderable scene of ``size = (H, W)``: background layer, foreground layers, lighting."""

    size: tuple[int, int]
    background: Layer
    objects: tuple[Layer, ...]
    lighting: Lighting
    info: dict

    def render(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(radiance, target)`` at times ``t_s`` (N,): two ``(N, H, W)`` (colour: ``(N, H, W, 3)``)
        float32 arrays."""
        t_s = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        reflectance = composite(self.background, list(self.objects), t_s, self.size)
        return self.lighting.radiance(reflectance, t_s), self.lighting.target(reflectance, t_s)

    def tracked_points(self) -> list[tuple[LayerMotion, np.ndarray]]:
        """Points whose motion bounds every pixel's: the view corners on the background (as seen at
        t = 0) and each object's corners."""
        height, width = self.size
        view = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
        inverse = self.background.motion.inverse_affine(np.zeros(1))[0]
        on_background = view @ inverse[:, :2].T + inverse[:, 2]
        return [(self.background.motion, on_background)] + [(o.motion, o.corners()) for o in self.objects]

    @property
    def look(self) -> Look:
        return Look(self.info["tone"]["gamma"], self.info["tone"]["contrast"], self.lighting)

    def substeps(self, t_start_s: float, t_end_s: float, max_step_px: float = 1.0, max_log_step: float = 0.05) -> int:
        """Render steps needed in ``[t_start_s, t_end_s]`` so no pixel moves more than ``max_step_px``
        and the brightness drift stays below ``max_log_step`` per step (motion measured on 8 sub-samples)."""
        t_s = np.linspace(t_start_s, t_end_s, 9)
        path_px = max_displacement(self.tracked_points(), t_s).sum()
        path_log = np.abs(np.diff(self.lighting.log_drift(t_s))).sum()
        return max(1, int(np.ceil(path_px / max_step_px)), int(np.ceil(path_log / max_log_step)))


def random_scene(
    rng: np.random.Generator,
    background: Photo,
    object_photos: list[Photo],
    size: tuple[int, int],
    duration_s: float,
    max_objects: int = 3,
    photometry: str = "linear",
    color: bool = False,
    look: Look | None = None,
) -> Scene:
    """Sample a scene: camera motion over ``background``, 0..``max_objects`` cut-outs from
    ``object_photos``, tone and lighting. Motion speeds: camera up to 20..400 px/s (log-uniform),
    rotation up to 0.35 rad/s, zoom up to 0.3 log/s; objects up to 30..300 px/s. ``photometry``:
    ``"linear"`` or ``"srgb"`` photo values (module docstring); ``color``: RGB layers (the random draws
    are the same, so a seed gives the same scene in gray and in colour). ``look``: use this tone and
    lighting instead of the drawn ones (drawn all the same, so the rest of the scene does not change).
    """
    height, width = size
    # 1. camera motion, then the photo scale that keeps the view inside the photo all the time
    speed = float(np.exp(rng.uniform(np.log(20), np.log(400))))
    relative = LayerMotion(
        center_x=SmoothSignal.random(rng, speed * rng.uniform(0.3, 1.0), offset=(width - 1) / 2),
        center_y=SmoothSignal.random(rng, speed * rng.uniform(0.3, 1.0), offset=(height - 1) / 2),
        anchor=(0.0, 0.0),
        rotation=SmoothSignal.random(rng, rng.uniform(0.0, 0.35)) if rng.random() < 0.6 else CONSTANT,
        log_scale=SmoothSignal.random(rng, rng.uniform(0.0, 0.3)) if rng.random() < 0.6 else CONSTANT,
    )
    t_s = np.linspace(0, duration_s, max(2, int(duration_s * 100)))
    view = np.array([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1]], dtype=np.float64)
    inverse = relative.inverse_affine(t_s)  # layer coordinates relative to the anchor
    corners = np.einsum("nij,pj->npi", inverse[:, :, :2], view) + inverse[:, None, :, 2]
    extent_x, extent_y = np.abs(corners[..., 0]).max() + 2, np.abs(corners[..., 1]).max() + 2
    photo = background.load(photometry, color)
    min_scale = max(2 * extent_x / photo.shape[1], 2 * extent_y / photo.shape[0])
    scale = min_scale * rng.uniform(1.0, max(1.0, min(1.6, 1.0 / min_scale)))  # > min: a random crop
    layer_size = (int(np.ceil(photo.shape[0] * scale)), int(np.ceil(photo.shape[1] * scale)))
    gamma, contrast = float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))), float(rng.uniform(0.7, 1.2))
    if look is not None:
        gamma, contrast = look.gamma, look.contrast
    image = adjust_tone(resize(photo, layer_size), gamma, contrast)
    anchor = (
        float(rng.uniform(extent_x, layer_size[1] - 1 - extent_x)) if layer_size[1] - 1 > 2 * extent_x else layer_size[1] / 2,
        float(rng.uniform(extent_y, layer_size[0] - 1 - extent_y)) if layer_size[0] - 1 > 2 * extent_y else layer_size[0] / 2,
    )
    camera = LayerMotion(relative.center_x, relative.center_y, anchor, relative.rotation, relative.log_scale)
    background_layer = Layer(image, camera)
    # 2. foreground cut-outs from other photos, each on its own trajectory
    objects, object_ids = [], []
    others = [p for p in object_photos if p.coco_id != background.coco_id]
    for _ in range(int(rng.integers(0, max_objects + 1)) if others else 0):
        source = others[int(rng.integers(len(others)))]
        objects.append(_random_object(rng, source.load(photometry, color), size))
        object_ids.append(source.coco_id)
    info = {
        "background_id": background.coco_id,
        "object_ids": object_ids,
        "camera_max_speed_px_s": speed,
        "photo_scale": float(scale),
        "tone": {"gamma": gamma, "contrast": contrast},
        "photometry": photometry,
    }
    lighting = random_lighting(rng, size)
    if look is not None:
        lighting = look.lighting
    info["lighting"] = lighting.describe()
    return Scene(size, background_layer, tuple(objects), lighting, info)


def _random_object(rng: np.random.Generator, photo: np.ndarray, size: tuple[int, int]) -> Layer:
    """A soft cut-out (0.2..0.55 of the short side, aspect 0.6..1.6) of a random crop of ``photo``."""
    height, width = size
    diameter = rng.uniform(0.2, 0.55) * min(size)
    aspect = np.exp(rng.uniform(np.log(0.6), np.log(1.6)))
    object_size = (max(4, int(diameter / np.sqrt(aspect))), max(4, int(diameter * np.sqrt(aspect))))
    zoom = rng.uniform(1.0, 3.0)  # crop this many times the object's size from the photo, if it fits
    crop_h = int(min(photo.shape[0], object_size[0] * zoom))
    crop_w = int(min(photo.shape[1], object_size[1] * zoom))
    top, left = int(rng.integers(0, photo.shape[0] - crop_h + 1)), int(rng.integers(0, photo.shape[1] - crop_w + 1))
    texture = resize(photo[top : top + crop_h, left : left + crop_w], object_size)
    texture = adjust_tone(texture, float(np.exp(rng.uniform(np.log(0.7), np.log(1.4)))), float(rng.uniform(0.8, 1.3)))
    speed = float(np.exp(rng.uniform(np.log(30), np.log(300))))
    motion = LayerMotion(
        center_x=SmoothSignal.random(rng, speed, offset=rng.uniform(0.1, 0.9) * width, drift_share=0.8),
        center_y=SmoothSignal.random(rng, speed, offset=rng.uniform(0.1, 0.9) * height, drift_share=0.8),
        anchor=((object_size[1] - 1) / 2, (object_size[0] - 1) / 2),
        rotation=SmoothSignal.random(rng, rng.uniform(0.0, 2.0), offset=rng.uniform(-np.pi, np.pi)),
        log_scale=SmoothSignal.random(rng, rng.uniform(0.0, 0.5)),
    )
    return Layer(texture, motion, soft_mask(rng, object_size))
