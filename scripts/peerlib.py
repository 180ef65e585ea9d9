"""Run the peer calibration library (aniposelib, behind anipose and FreeMoCap)
from FuseCap's environment, for benchmarks that compare calibrations.

aniposelib lives in its own virtual environment, .venv-peer (made by
scripts/setup_peer.sh), with its own pinned numpy, OpenCV, numba and jax: it is
never a FuseCap dependency, and FuseCap's environment never imports it. This
module runs scripts/peer_anipose.py with the peer's python in a subprocess and
reads the camera group it writes back through FuseCap's own TOML reader, the
same one that imports anipose and FreeMoCap calibrations in the app.

    import peerlib  # with scripts/ on sys.path, as the bench scripts import benchlib
    if peerlib.peer_available():
        rig, info = peerlib.run_anipose(images_dir, board, workdir)

The rig's cameras are named after the image folders. Its world is aniposelib's:
near its first camera's frame (its bundle adjustment moves that camera too),
in mm. Compare it with the truth after a similarity alignment, or set its floor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # scripts/ is not a package: let `import peerlib` find core from anywhere
    sys.path.insert(0, str(REPO))

from core.calibration.board import BoardSpec  # noqa: E402
from core.calibration.files import read_anipose_toml  # noqa: E402
from core.camera.rig import CameraRig  # noqa: E402

PEER_PYTHON = REPO / ".venv-peer" / "bin" / "python"
PEER_SCRIPT = REPO / "scripts" / "peer_anipose.py"
SETUP = "scripts/setup_peer.sh"


class PeerFailed(RuntimeError):
    """The peer ran but did not calibrate; the message holds its own reason."""


def peer_available() -> bool:
    """True when the peer environment was set up completely (setup_peer.sh
    writes its stamp only after the install and an import check succeeded)."""
    return PEER_PYTHON.is_file() and (REPO / ".venv-peer" / ".peer-requirements.txt").is_file()


def run_anipose(images_dir: Path, board: BoardSpec, workdir: Path,
                timeout_s: float = 600) -> tuple[CameraRig, dict] | None:
    """Calibrate the cameras in `images_dir` (one sub-folder of PNG images a
    camera, the same file name for the same moment) with aniposelib as
    `anipose calibrate` does.

    Returns the rig read back from aniposelib's TOML (mm, aniposelib's world)
    and the peer's JSON line (seconds, detect_seconds, error_px, cameras, ...),
    or None, with the reason printed, when the peer environment is missing. The
    board definition and the TOML are written in `workdir`. Raises PeerFailed
    when the peer exits with an error or runs past `timeout_s` seconds."""
    if not peer_available():
        print(f"peer: aniposelib's environment .venv-peer is missing or incomplete; run {SETUP}", file=sys.stderr)
        return None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    board_json = workdir / "board.json"
    board_json.write_text(json.dumps(board.to_dict(), indent=1), encoding="utf-8")
    out_toml = workdir / "calibration.toml"
    out_toml.unlink(missing_ok=True)  # never read back a previous run's result
    cmd = [str(PEER_PYTHON), str(PEER_SCRIPT), str(images_dir), str(board_json), str(out_toml)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=workdir)
    except subprocess.TimeoutExpired as exc:
        raise PeerFailed(f"aniposelib ran past {timeout_s:g} s on {images_dir}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise PeerFailed(f"aniposelib failed (exit {proc.returncode}) on {images_dir}:\n{tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if not lines or not out_toml.is_file():
        raise PeerFailed(f"aniposelib printed no result for {images_dir}: {proc.stdout[-500:]!r}")
    info = json.loads(lines[-1])
    return read_anipose_toml(out_toml), info
