"""``make bench``: every benchmark, one after the other, with their defaults. One that fails is named and the rest
still run: the closing table has every figure measured, and the run exits non-zero after it."""

import sys
import traceback

from bench import (
    chat_list,
    contracts,
    ejournal,
    front_hop,
    gateway_post,
    history_page,
    message_search,
    messaging,
    messaging_post,
    pipeline,
    realtime,
    registration,
    replicas,
    report,
    school,
    sfu,
    web,
    web_call,
)

BENCHES = (contracts, pipeline, registration, school, replicas, messaging, history_page, gateway_post, front_hop,
           messaging_post, chat_list, message_search, realtime, ejournal, sfu, web, web_call)


def main() -> int:
    sys.argv = sys.argv[:1]
    failed = []
    for bench in BENCHES:
        try:
            bench.main()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - named below; the other benches still run
            if not (isinstance(exc, SystemExit) and not exc.code):  # exit(0): a parser's --help, not a failure
                traceback.print_exc()
                failed.append(bench.__name__)
        print("\n" + "=" * 100 + "\n", flush=True)
    print("Every headline figure of this run, next to its baseline of the same run and its goal:\n")
    print(report.table(), flush=True)
    if failed:
        print(f"\nFAILED: {', '.join(failed)} (their tracebacks above; their rows are missing from the table)",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
