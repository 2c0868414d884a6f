"""``python -m jetwire.p9 ls|cat|put|stat|mkdir|rm ADDRESS PATH``: a 9P2000.L client at the shell.
``python -m jetwire.p9 serve DIR --listen 127.0.0.1:5640`` serves a directory (see ``serve_main``).
``python -m jetwire.p9 proxy --listen A --to B`` forwards 9P and prints each message (``proxy.proxy_main``).

ADDRESS is ``HOST:PORT[/aname]`` (``127.0.0.1:564/srv/export``) or ``unix:SOCKET[:aname]``.
``put`` copies standard input to PATH. Errors print as ``jetwire.p9: PATH: reason`` with exit
status 1; a bad command line exits with status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import stat as statmod
import sys
from collections.abc import Sequence

from .client import Client, connect


async def _run(args: argparse.Namespace) -> int:
    options = {"uname": args.uname, "timeout": args.timeout, "msize": args.msize}
    if args.n_uname is not None:
        options["n_uname"] = args.n_uname
    client: Client = await connect(args.address, **options)
    try:
        path = args.path
        if args.command == "ls":
            entries = await client.scandir(path)
            if args.long:
                for entry in sorted(entries, key=lambda e: e.name):
                    st = await client.lstat(f"{path}/{entry.name}" if path else entry.name)
                    print(f"{statmod.filemode(st.st_mode)} {st.st_nlink:>3} {st.st_uid:>5} {st.st_gid:>5} "
                          f"{st.st_size:>10} {entry.name}")
            else:
                for name in sorted(e.name for e in entries):
                    print(name)
        elif args.command == "cat":
            sys.stdout.buffer.write(await client.read_bytes(path))
            sys.stdout.buffer.flush()
        elif args.command == "put":
            await client.write_bytes(path, sys.stdin.buffer.read())
        elif args.command == "stat":
            st = await client.stat(path)
            print(f"mode {statmod.filemode(st.st_mode)} ({st.st_mode:o})\nsize {st.st_size}\nlinks {st.st_nlink}\n"
                  f"uid {st.st_uid}\ngid {st.st_gid}\ninode {st.st_ino}\nmtime_ns {st.st_mtime_ns}")
        elif args.command == "mkdir":
            await client.mkdir(path)
        elif args.command == "rm":
            await client.remove_path(path)
    finally:
        await client.close()
    return 0


def serve_main(argv: Sequence[str]) -> int:
    """``serve DIR [--listen ADDRESS]... [--read-only] [--map-users]``: serves DIR until SIGINT or SIGTERM,
    logging one line per connection; exit status 0 after a signal, 1 if it cannot listen."""
    import logging

    from .localfs import LocalFilesystem
    from .serving import DEFAULT_MAX_IN_FLIGHT, serve, until_stopped

    parser = argparse.ArgumentParser(prog="python -m jetwire.p9 serve", description="Serve a directory over 9P2000.L.")
    parser.add_argument("directory")
    parser.add_argument("--listen", action="append", help="HOST:PORT or unix:PATH (repeatable; default 127.0.0.1:564)")
    parser.add_argument("--read-only", action="store_true", help="refuse every change with EROFS")
    parser.add_argument("--map-users", action="store_true",
                        help="act as each attaching user (its n_uname, else its uname), not as the server; needs root")
    parser.add_argument("--msize", type=int, default=None, help="the largest msize to accept")
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT)
    parser.add_argument("-q", "--quiet", action="store_true", help="no log line per connection")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(message)s")
    options: dict[str, int] = {"max_in_flight": args.max_in_flight}
    if args.msize is not None:
        options["max_msize"] = args.msize

    async def run() -> int:
        try:
            handler = LocalFilesystem(args.directory, read_only=args.read_only, map_users=args.map_users)
        except OSError as exc:
            print(f"jetwire.p9 serve: {describe_error(exc, args.directory)}", file=sys.stderr)
            return 1
        try:
            server = await serve(handler, *(args.listen or ["127.0.0.1:564"]), **options)
        except OSError as exc:
            print(f"jetwire.p9 serve: {describe_error(exc)}", file=sys.stderr)
            handler.close()
            return 1
        await until_stopped(f"serving {handler.root} on {' '.join(server.addresses)}")
        await server.close()
        handler.close()
        return 0

    return asyncio.run(run())


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "serve":
        return serve_main(argv[1:])
    if argv and argv[0] == "proxy":
        from .proxy import proxy_main

        return proxy_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m jetwire.p9", description="A 9P2000.L client.")
    parser.add_argument("command", choices=["ls", "cat", "put", "stat", "mkdir", "rm", "serve", "proxy"])
    parser.add_argument("address", help="HOST:PORT[/aname] or unix:SOCKET[:aname]")
    parser.add_argument("path", nargs="?", default="", help="a path below the attached root")
    parser.add_argument("-l", "--long", action="store_true", help="ls: mode, links, owner, size")
    parser.add_argument("--uname", default="root")
    parser.add_argument("--n-uname", type=int, default=None, help="numeric uid (default: none, use --uname)")
    parser.add_argument("--msize", type=int, default=65536 + 24)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each reply")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except Exception as exc:  # a server's refusal or a protocol error: say what, not a traceback
        print(f"jetwire.p9: {describe_error(exc, args.path)}", file=sys.stderr)
        return 1


def describe_error(exc: BaseException, path: str = "") -> str:
    """One line that always says something: some exceptions have an empty ``str()``
    (``TimeoutError()``, ``ConnectionResetError()``), and then the type name stands in; an
    ``OSError`` that names no file is put down to ``path``."""
    text = str(exc)
    if not text:
        text = f"{type(exc).__name__} (no details given)"
    elif not isinstance(exc, (OSError, ValueError)):
        text = f"{type(exc).__name__}: {text}"  # a protocol error: the type says which kind
    if isinstance(exc, OSError) and exc.filename is None and path:
        text = f"{path}: {text}"
    return text


if __name__ == "__main__":
    sys.exit(main())
