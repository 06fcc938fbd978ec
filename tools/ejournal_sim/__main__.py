"""python -m tools.ejournal_sim --port 8090 --regions 16,77 [--students 1000 ...]"""

from __future__ import annotations

import argparse

from tools.ejournal_sim.server import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description="A simulated regional e-journal (several regions at once)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--regions", default="16")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--teachers", type=int, default=80)
    args = parser.parse_args()
    app = create_app(args.regions.split(","), args.seed, classes=args.classes, students=args.students,
                     teachers=args.teachers)
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
