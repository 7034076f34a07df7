"""Uploads and heavy work.

Every uploaded photo (POST /v1/edit, POST /v1/tryon) goes through read_upload: the multipart part is copied
to a temporary file for the decoder, its decoded size is read from the image header and refused over
`max_upload_pixels` before a single pixel is decoded (a 445 KB PNG can declare 12,000 x 12,000 pixels:
432 MB as RGB, several GB in the decoder's and converters' copies), and the file is deleted before the
answer.

Work that takes seconds of CPU or hundreds of MB (an edit, a try-on, upsampling many pixels) shares one
admission limit, HeavyGate: a request that finds no room is answered 503 + Retry-After at once instead
of piling a second and third photo into memory. When the last heavy request ends, the C allocator is
asked to hand its free pages back to the system (glibc keeps freed large blocks otherwise), so the RSS
after a burst returns near where it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import shutil
import tempfile
import threading
import time
import warnings
from contextlib import asynccontextmanager

from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from jewelgan.serve.errors import ApiError

EDIT_COST = 2  # an inversion uses every core for seconds: it takes two slots (all of them by default)


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _load_libc()


def give_back_memory() -> None:
    """Hand the allocator's free pages back to the system (glibc's malloc_trim; a no-op elsewhere)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


class UploadRefused(ValueError):
    """An upload refused before decoding (its header declares too many pixels)."""


def check_pixels(path: str, max_pixels: int) -> None:
    """Refuse an image whose header declares more than max_pixels. Only the header is read; a file that is
    not an image passes here, and the reader then says what is wrong with it in its own words."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap decides below
            with Image.open(path) as im:
                width, height = im.size
    except Image.DecompressionBombError as e:  # PIL's own hard limit, far above ours
        raise UploadRefused(f"the uploaded photo is a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return
    if width * height > max_pixels:
        raise UploadRefused(f"the uploaded photo is {width} x {height} = {width * height:,} pixels, over the cap of "
                            f"{max_pixels:,}: send a smaller one")


def full_size_reader(error: type[Exception]):
    """A reader for read_upload: the photo at its own size, a refused file raised as `error` naming it."""
    def read(path: str):
        from jewelgan.data.imageio import RejectedImage, load_full_size

        try:
            return load_full_size(path)
        except RejectedImage as e:
            raise error(f"{path}: {e}") from None
    return read


def read_upload(source, reader, error: type[Exception], max_pixels: int):
    """reader(path) of an uploaded file (`source`: its bytes or a file object), after check_pixels. The upload
    lives in a temporary file for the decoder only, deleted before this returns; the temporary path in an
    error reads "the uploaded photo". A refusal is an ApiError 422 on the field `photo`."""
    fd, path = tempfile.mkstemp(prefix="jewelgan-upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(source, (bytes, bytearray)):
                f.write(source)
            else:
                source.seek(0)
                shutil.copyfileobj(source, f, 1 << 20)
        try:
            check_pixels(path, max_pixels)
            return reader(path)
        except UploadRefused as e:
            raise ApiError(422, str(e), "photo") from None
        except error as e:
            raise error(str(e).replace(path, "the uploaded photo")) from None
    finally:
        os.unlink(path)


class HeavyGate:
    """At most `slots` units of heavy work at once; a request that does not fit is refused at once (503 with
    Retry-After from the measured length of heavy requests). Non-blocking by design: waiting requests would
    hold their uploads in memory, which is what the limit is there to prevent."""

    def __init__(self, slots: int, on_refused=None):
        self.slots, self.used, self.on_refused = slots, 0, on_refused
        self._lock = threading.Lock()
        self._seconds = 2.0  # an exponential average of how long one heavy request takes

    def retry_after(self) -> int:
        return max(1, math.ceil(self._seconds))

    @asynccontextmanager
    async def take(self, cost: int = 1, what: str = "heavy work"):
        cost = max(1, min(cost, self.slots))
        with self._lock:
            room = self.used + cost <= self.slots
            if room:
                self.used += cost
        if not room:
            if self.on_refused is not None:
                self.on_refused()
            raise ApiError(503, f"server busy with other photos or large images; {what} needs a free slot: "
                                f"retry in {self.retry_after()} s", None, retry_after=self.retry_after())
        start = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.used -= cost
                idle = self.used == 0
                self._seconds = 0.8 * self._seconds + 0.2 * (time.monotonic() - start)
            if idle:
                await run_in_threadpool(give_back_memory)
