"""``make bench``: every benchmark, one after the other, with their defaults."""

import sys

from bench import (
    chat_list,
    contracts,
    ejournal,
    front_hop,
    gateway_post,
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

if __name__ == "__main__":
    sys.argv = sys.argv[:1]
    contracts.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    pipeline.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    registration.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    school.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    replicas.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    messaging.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    gateway_post.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    front_hop.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    messaging_post.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    chat_list.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    message_search.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    realtime.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    ejournal.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    sfu.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    web.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    web_call.main()
    print("\n" + "=" * 100 + "\n", flush=True)
    print("Every headline figure of this run, next to its baseline of the same run and its goal:\n")
    print(report.table(), flush=True)
