"""Lists a directory and prints a file from a 9P2000.L server, the async way.

    diod -f -n -l 127.0.0.1:5640 -e /tmp/export &
    python examples/p9_cat.py 127.0.0.1:5640/tmp/export hello.txt
"""

from __future__ import annotations

import asyncio
import sys

from jetwire import p9


async def main(address: str, path: str) -> None:
    async with await p9.connect(address, n_uname=0) as fs:
        print(f"msize {fs.msize}; in /: {', '.join(sorted(await fs.listdir('')))}")
        stat = await fs.stat(path)
        print(f"{path}: {stat.st_size} bytes, mode {stat.st_mode:o}")
        sys.stdout.buffer.write(await fs.read_bytes(path))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
