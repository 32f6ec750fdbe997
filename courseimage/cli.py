"""``./lab image build`` and ``./lab image save [FILE|DIR]``, run as the lab's account."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from labcore.state import paths

from courseimage.build import build, save

__all__ = ["main"]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="./lab image", description="the course as one container image")
    sub = ap.add_subparsers(dest="action", required=True)
    bd = sub.add_parser("build", help="build the image archive from Debian packages and PyPI (no base image)")
    sv = sub.add_parser("save", help="write the image as one docker-load-able .tar.gz and print its sha256")
    ps = sub.add_parser("push", help="push every built architecture as one multi-architecture index")
    ps.add_argument("target", help="HOST:PORT[/REPO][:TAG] of a registry over plain HTTP "
                    "(default repo dockerlab/course, tag the course version)")
    for sp in (bd, sv):
        sp.add_argument("--arch", default=None, help="a Debian architecture (default: this machine's); another "
                        "one is built under qemu-user-static (courseimage/README.md)")
    sv.add_argument("out", nargs="?", help="a file or a directory (default: the lab home's image/)")
    args = ap.parse_args(argv)
    p = paths()
    if args.action == "build":
        # the course registry and the engine, as ./lab up makes them (quick when they are there)
        if subprocess.call([sys.executable, "-m", "labctl", "up", "--no-jupyter"]) != 0:
            return 1
        if not (p.home / "grading" / "release").is_dir() and \
                subprocess.call([sys.executable, "-m", "labctl", "grade", "generate"]) != 0:
            return 1
        build(p, arch=args.arch)
        return 0
    if args.action == "push":
        from courseimage.publish import push

        push(p, args.target, lambda msg: print(f"[image] {msg}", flush=True))
        return 0
    out, digest = save(p, Path(args.out).resolve() if args.out else p.home / "image", arch=args.arch)
    print(f"{digest}  {out}")
    print(f"# load it with: docker load -i {out}")
    return 0
