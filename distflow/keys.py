"""CURVE key management: `python -m distflow.keys generate DIR [--clients N]` and `list DIR`.

`generate` writes a server key pair and N client key pairs (see
docs/security.md for the layout and how to distribute them); `list` prints the
public keys and the server's allow-list, and warns about secret files that
other users can read. The launcher's `--keys DIR` (DISTFLOW_KEYS) then turns
on CURVE encryption and the allow-list on every parameter-server socket.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from distflow.distribute import transport

__all__ = ["generate", "describe", "main"]


def generate(directory: str | os.PathLike, clients: int = 1,
             overwrite: bool = False) -> list[Path]:
    """Makes a key directory: a server pair and `clients` client pairs.

    Args:
        directory: where to write (created with mode 0700).
        clients: number of client key pairs (give each worker machine its own).
        overwrite: replace existing keys.

    Returns:
        The files written (secrets have mode 0600).
    """
    return transport.generate_keys(directory, clients, overwrite=overwrite)


def describe(directory: str | os.PathLike) -> str:
    """A human-readable listing of a key directory."""
    if not Path(directory).is_dir():
        raise ValueError(f"Key directory {directory} does not exist. Make one with "
                         f"`python -m distflow.keys generate {directory}`.")
    info = transport.describe_keys(directory)
    lines = [f"key directory {Path(directory)}",
             f"server public key: {info['server'] or '(missing: no server.key)'}",
             f"allow-list ({len(info['clients'])} client key(s)):"]
    for client in info["clients"]:
        secret = "with secret" if client["has_secret"] else "public only"
        lines.append(f"  {client['name']}: {client['public']} ({secret})")
    for path in info["loose_secrets"]:
        lines.append(f"WARNING: {path} is readable by other users; run `chmod 600 {path}`.")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m distflow.keys",
                                     description="CURVE keys for distflow parameter servers.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="make a server key pair and client key pairs")
    gen.add_argument("directory")
    gen.add_argument("--clients", type=int, default=1, help="client key pairs (default 1)")
    gen.add_argument("--force", action="store_true", help="replace existing keys")
    show = sub.add_parser("list", help="show the public keys and the allow-list")
    show.add_argument("directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            written = generate(args.directory, args.clients, overwrite=args.force)
            print(f"wrote {len(written)} key files to {args.directory}")
        print(describe(args.directory))
    except (ValueError, transport.TransportError, OSError) as exc:
        print(f"distflow.keys: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
