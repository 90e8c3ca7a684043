"""The Debian part of the default corpus: pt-BR documentation packages.

Fetched with `apt-get download` (after one `apt-get update` if a package is not found and we
are root) into the cache, unpacked with `dpkg-deb -x` into a temporary folder, read, and the
folder removed (the .debs stay cached). Any step that fails makes that package unavailable,
reported by the caller; nothing here needs root.

Example:
    >>> debs, missing = fetch_debs(cache_dir() / "debian", print)
    >>> sources = debian_sources(debs, cache_dir() / "debian", print)
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from kerasvq.data.sources import Source
from kerasvq.data.sources.text_cleaning import (
    markup_paragraphs,
    plain_paragraphs,
    roff_paragraphs,
)


@dataclasses.dataclass(frozen=True)
class DebianSource:
    name: str
    packages: tuple[str, ...]
    patterns: tuple[str, ...]  # globs inside the unpacked package
    kind: str  # "html", "mallard", "roff" or "text"


DEBIAN_SOURCES = (
    DebianSource("libreoffice-help-pt-br", ("libreoffice-help-pt-br",),
                 ("usr/share/libreoffice/help/pt-BR/text/**/*.html",), "html"),
    DebianSource("gimp-help-pt-br", ("gimp-help-pt-br",),
                 ("usr/share/gimp/2.0/help/pt_BR/**/*.html",), "html"),
    DebianSource("focalinux-text", ("focalinux-text",),
                 ("usr/share/doc/focalinux/text/*/index.txt.gz",), "text"),
    DebianSource("debian-handbook", ("debian-handbook",),
                 ("usr/share/doc/debian-handbook/html/pt-BR/*.html",), "html"),
    DebianSource("manpages-pt-br", ("manpages-pt-br", "manpages-pt-br-dev"),
                 ("usr/share/man/pt_BR/man*/*.gz",), "roff"),
    DebianSource("gnome-user-docs", ("gnome-user-docs",),
                 ("usr/share/help/pt_BR/**/*.page",), "mallard"),
    DebianSource("debian-reference-pt-br", ("debian-reference-pt-br",),
                 ("usr/share/debian-reference/debian-reference.pt-br.txt.gz",), "text"),
    DebianSource("debian-edu-doc-pt-br", ("debian-edu-doc-pt-br",),
                 ("usr/share/doc/debian-edu-doc-pt-br/*.html",), "html"),
)


def cached_deb(deb_dir: Path, package: str) -> Path | None:
    found = sorted(deb_dir.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def apt_download(package: str, deb_dir: Path) -> str:
    """Runs `apt-get download` in a private folder and moves the .deb into `deb_dir`; returns
    '' on success or the last line of its errors."""
    with tempfile.TemporaryDirectory(dir=deb_dir, prefix=".download-") as tmp:
        result = subprocess.run(["apt-get", "download", package], cwd=tmp,
                                capture_output=True, text=True)
        deb = cached_deb(Path(tmp), package)
        if result.returncode == 0 and deb is not None:
            os.replace(deb, deb_dir / deb.name)
            return ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("E:")]
    return (lines or [f"apt-get exited with status {result.returncode}"])[-1]


def fetch_debs(directory: Path, log: Callable[[str], None]
               ) -> tuple[dict[str, Path], dict[str, str]]:
    """Downloads every package of DEBIAN_SOURCES once; returns ({package: .deb}, {package: why
    it is missing})."""
    packages = [p for s in DEBIAN_SOURCES for p in s.packages]
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return {}, {p: "apt-get or dpkg-deb not found" for p in packages}
    deb_dir = directory / "debs"
    deb_dir.mkdir(parents=True, exist_ok=True)
    debs, missing = {}, {}
    updated = False
    for package in packages:
        deb = cached_deb(deb_dir, package)
        if deb is None:
            log(f"apt-get download {package}")
            error = apt_download(package, deb_dir)
            if error and not updated and hasattr(os, "geteuid") and os.geteuid() == 0:
                log("apt-get update (package lists missing or stale)")
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
                updated = True
                error = apt_download(package, deb_dir)
            if error:
                missing[package] = error
                continue
            deb = cached_deb(deb_dir, package)
        debs[package] = deb
    return debs, missing


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # focalinux is ISO-8859-1


def _paragraphs(path: Path, kind: str) -> list[str]:
    text = _read_text(path)
    if kind == "html":
        return markup_paragraphs(text)
    if kind == "mallard":
        return markup_paragraphs(text, mallard=True)
    if kind == "roff":
        return roff_paragraphs(text)
    return plain_paragraphs(text)


def debian_sources(debs: dict[str, Path], directory: Path,
                   log: Callable[[str], None]) -> list[Source]:
    """Unpacks each source's packages and reads its files (sorted); one group per file."""
    sources = []
    for spec in DEBIAN_SOURCES:
        if not all(p in debs for p in spec.packages):
            continue
        with tempfile.TemporaryDirectory(dir=directory, prefix=".unpack-") as tmp:
            root = Path(tmp)
            ok = True
            for package in spec.packages:
                result = subprocess.run(["dpkg-deb", "-x", str(debs[package]), str(root)],
                                        capture_output=True, text=True)
                if result.returncode != 0:
                    log(f"WARNING: dpkg-deb -x {debs[package].name} failed: "
                        f"{result.stderr.strip()[-200:]}")
                    ok = False
            if not ok:
                continue
            files = sorted({f for pattern in spec.patterns for f in root.glob(pattern)
                            if f.is_file()})
            groups = [_paragraphs(f, spec.kind) for f in files]
        sources.append(Source(spec.name, [g for g in groups if g]))
    return sources
