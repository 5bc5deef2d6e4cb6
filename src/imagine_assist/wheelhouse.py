"""Wheelhouses: folders of wheels that install imagine-assist with no network (a vessel
bundle's `wheels/`, a Nuclio build's offline `wheels/`), checked before they are relied on."""

from __future__ import annotations

from pathlib import Path

from imagine_assist.errors import UserError

REQUIRED_WHEELS = ("imagine_assist", "onnxruntime")


def check_wheelhouse(wheelhouse: Path, gpu: bool = False, python: str | None = None) -> list[Path]:
    """The wheels of a folder that can install imagine-assist with no network: ours and
    onnxruntime there (onnxruntime-gpu for `gpu`), and every CPython wheel built for
    `python` ("3.12"; None: not checked). An offline build finds a wrong one only when pip
    runs in the image, or at sea."""
    if not wheelhouse.is_dir():
        raise UserError(f"no wheelhouse folder at {wheelhouse}")
    wheels = sorted(wheelhouse.glob("*.whl"))
    names = {wheel.name.split("-")[0].lower().replace("-", "_") for wheel in wheels}
    wanted = [*REQUIRED_WHEELS, *(("onnxruntime_gpu",) if gpu else ())]
    missing = [name for name in wanted if name not in names]
    if missing:
        raise UserError(
            f"{wheelhouse} lacks wheels for {', '.join(missing)}. Build one ashore: the "
            "wheels/ folder of `imagine-assist bundle --out DIR` (docs/vessel.md), with "
            "onnxruntime-gpu added by `pip download -d DIR/wheels onnxruntime-gpu` for --gpu"
        )
    if python is not None:
        tag = "cp" + python.replace(".", "")
        other = [w.name for w in wheels if not _installs_on(w.name, tag)]
        if other:
            raise UserError(
                f"{len(other)} wheels of {wheelhouse} are built for another Python than "
                f"{python}, the one they must install into ({other[0]} first): make the "
                f"wheelhouse for {python} (`imagine-assist bundle --python {python}`), or "
                "give the Python it was made for"
            )
    return wheels


def _installs_on(wheel: str, cpython: str) -> bool:
    """Whether a wheel's Python tag (name-version[-build]-PY-ABI-PLATFORM.whl) takes this
    CPython ("cp312"): pure wheels and abi3 ones from an older CPython do."""
    parts = wheel[: -len(".whl")].split("-")
    if len(parts) < 5:
        return True  # not a wheel name we can read: pip will say
    pythons, abi = parts[-3].split("."), parts[-2]
    if any(not tag.startswith("cp") for tag in pythons):  # py3, py2.py3
        return True
    if abi == "abi3":
        return any(int(tag[2:] or 0) <= int(cpython[2:]) for tag in pythons)
    return cpython in pythons
