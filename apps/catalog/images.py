"""Product image files with Pillow, without the database: check an upload before anything is
stored, clean it (metadata out, EXIF orientation applied) and make WebP renditions.

Every check runs on what the bytes are, never on the file's name or declared content type, and
before a single pixel is decoded where it can: the byte size first, then the dimensions from the
header, then the pixels, frame by frame, counting against the same limit."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

from django.conf import settings
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from apps.catalog.errors import ProductErrorCode
from apps.common.errors import UserError

# Pillow format -> the extension we store it under.
FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
RENDITION_QUALITY = 82
ORIGINAL_QUALITY = 92


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    extension: str
    width: int
    height: int


@dataclass
class _Decoded:
    frames: list[Image.Image]
    format: str
    icc_profile: bytes | None
    durations: list[int]
    loop: int


def _read(upload, field: str) -> bytes:
    limit = settings.PRODUCT_IMAGE_MAX_BYTES
    if not hasattr(upload, "read"):
        raise UserError(
            "Send the image as a file (GraphQL multipart request).",
            field=field,
            code=ProductErrorCode.INVALID_IMAGE,
        )
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise UserError(
            f"The file is larger than {limit // 1_000_000} MB.",
            field=field,
            code=ProductErrorCode.FILE_TOO_LARGE,
        )
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise UserError(
            f"The file is larger than {limit // 1_000_000} MB.",
            field=field,
            code=ProductErrorCode.FILE_TOO_LARGE,
        )
    if not data:
        raise UserError("The file is empty.", field=field, code=ProductErrorCode.INVALID_IMAGE)
    return data


def _too_many_pixels(field: str) -> UserError:
    megapixels = settings.PRODUCT_IMAGE_MAX_PIXELS / 1_000_000
    return UserError(
        f"The image has more than {megapixels:g} million pixels.",
        field=field,
        code=ProductErrorCode.TOO_MANY_PIXELS,
    )


def _frames(image: Image.Image, field: str) -> Iterator[Image.Image]:
    """Each frame decoded and upright, stopping as soon as the pixels decoded pass the limit."""
    limit = settings.PRODUCT_IMAGE_MAX_PIXELS
    decoded = 0
    for frame in ImageSequence.Iterator(image):
        decoded += frame.width * frame.height
        if decoded > limit:
            raise _too_many_pixels(field)
        upright = ImageOps.exif_transpose(frame)  # a copy, turned as its EXIF orientation says
        if upright.mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grey: scale, do not clip
            upright = upright.convert("I").point(lambda v: v / 256).convert("L")
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
        clean = upright.convert("RGBA" if has_alpha else "RGB")
        clean.info = {}  # nothing of the source's metadata travels on
        yield clean


def _decode(data: bytes, field: str) -> _Decoded:
    try:
        with Image.open(BytesIO(data), formats=list(FORMATS)) as image:
            # From the header, before decoding anything. Pillow's own guard (a warning past 89 Mpx,
            # an error past twice that) is a backstop; warnings filters are process-wide, so not
            # the way to refuse in a threaded server.
            if image.width * image.height > settings.PRODUCT_IMAGE_MAX_PIXELS:
                raise _too_many_pixels(field)
            durations = []
            frames = []
            for frame in _frames(image, field):
                frames.append(frame)
                durations.append(int(image.info.get("duration") or 100))
            assert image.format is not None  # Image.open sets it to the format it recognised
            return _Decoded(
                frames=frames,
                format=image.format,
                icc_profile=image.info.get("icc_profile") or None,
                durations=durations,
                loop=int(image.info.get("loop", 0) or 0),
            )
    except UnidentifiedImageError as exc:
        raise UserError(
            "The file is not a JPEG, PNG, WebP or GIF image.",
            field=field,
            code=ProductErrorCode.INVALID_IMAGE,
        ) from exc
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(field) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or damaged
        raise UserError(
            "The image is damaged or incomplete.", field=field, code=ProductErrorCode.INVALID_IMAGE
        ) from exc


def _encode(decoded: _Decoded, image_format: str, frames: list[Image.Image], quality: int) -> bytes:
    out = BytesIO()
    options: dict[str, object] = {}
    if decoded.icc_profile and image_format != "GIF":
        options["icc_profile"] = decoded.icc_profile  # colour, not personal data: kept
    if image_format == "JPEG":
        frames = [frame.convert("RGB") for frame in frames[:1]]
        options.update(quality=quality, optimize=True)
    elif image_format == "WEBP":
        options.update(quality=quality)
    if len(frames) > 1:
        options.update(
            save_all=True, append_images=frames[1:], duration=decoded.durations, loop=decoded.loop
        )
        if image_format == "GIF":
            options["disposal"] = 2
    frames[0].save(out, format=image_format, **options)
    return out.getvalue()


def clean(upload, *, field: str = "file") -> CleanImage:
    """The upload re-encoded in its own format without metadata, or a UserError."""
    decoded = _decode(_read(upload, field), field)
    first = decoded.frames[0]
    return CleanImage(
        content=_encode(decoded, decoded.format, decoded.frames, ORIGINAL_QUALITY),
        extension=FORMATS[decoded.format],
        width=first.width,
        height=first.height,
    )


def rendition_sizes(width: int, height: int) -> list[int]:
    """The configured sizes smaller than the image's longest side: never an upscale."""
    longest = max(width, height)
    return sorted(size for size in settings.PRODUCT_IMAGE_RENDITIONS if size < longest)


def renditions(data: bytes, sizes: list[int]) -> dict[int, bytes]:
    """WebP files whose longest side is each of `sizes` (an animation stays animated)."""
    decoded = _decode(data, "image")
    made = {}
    for size in sizes:
        frames = []
        for frame in decoded.frames:
            small = frame.copy()
            small.thumbnail((size, size), Image.Resampling.LANCZOS)
            frames.append(small)
        made[size] = _encode(decoded, "WEBP", frames, RENDITION_QUALITY)
    return made


def nearest(renditions: dict[str, str], size: int | None) -> str | None:
    """The name of the smallest rendition at least `size` wide and tall, if there is one."""
    if size is None:
        return None
    fitting = sorted(int(key) for key in renditions if int(key) >= size)
    return renditions[str(fitting[0])] if fitting else None
