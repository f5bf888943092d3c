"""Configs and scenarios several live tests share."""

from pathlib import Path

from harness.algorithms import ALGORITHMS, shipped_config


def kill_scenario(tmp_path: Path, duration: float = 5) -> Path:
    """Kill instance 2 at 1.5 s, start it again 1.5 s later; ``duration`` seconds of load in all."""
    path = tmp_path / "kill.toml"
    path.write_text(
        f'duration = {duration}\nwarmup = 1\n[[faults]]\nat = 1.5\nkind = "kill"\ninstance = 2\nrollback_after = 1.5\n'
    )
    return path


def short_fail_timeout_nginx(tmp_path: Path) -> Path:
    """The shipped nginx health-checks config with fail_timeout=2s, so recovery fits in a short run."""
    path = tmp_path / "nginx.conf"
    path.write_text(
        shipped_config(ALGORITHMS["health_checks"]).read_text().replace("fail_timeout=30s", "fail_timeout=2s")
    )
    return path


# Opens COUNT WebSockets one after another, holds them until told on stdin, then closes them.
HOLDER = r"""
import asyncio, sys
import aiohttp

async def main(url, count):
    async with aiohttp.ClientSession() as session:
        sockets = []
        for _ in range(count):
            socket = await session.ws_connect(url)
            await socket.send_str("open")
            await socket.receive(timeout=5)  # the echo: the session reached an instance
            sockets.append(socket)
        print("open", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for socket in sockets:
            await socket.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""
