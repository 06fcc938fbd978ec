"""Contract validation per event: what make_event + to_json (a relay, per event it publishes) and parse_event (every
consumer and the realtime servers, per delivery) cost in one process, in µs a call (issue #17).

Each path is timed against the way before, kept here as a copy (``old_send``, ``old_parse``), in turns in the same
run (``--rounds`` rounds of ``--calls`` calls each, the median of the rounds): before, a producer dumped the data with
the contract's marshmallow schema, loaded that dump (the validation) and dumped the loaded data again to send it; a
consumer loaded the envelope with its marshmallow schema, then the data. Now (shared/contracts/envelope.py,
shared/contracts/loading.py) the producer dumps and loads once each without the schema's per-field machinery (the
schema itself at the first doubt, so the same errors) and sends the dump it validated, completed with the defaults the
load filled; the consumer checks the envelope producers write field by field and loads the data the same way. The
breakdown (marshmallow's dump and load, loading.py's, JSON) is printed too. Representative events: messaging's
MessagePosted (a text message) and identity's UserRegistered.

    python -m bench.contracts [--calls 2000 --rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import datetime, timezone

from bench import report
from shared.contracts import CloudEvent, ContractError, get_contract, loading, make_event, parse_event
from shared.contracts.envelope import CONTENT_TYPE, SPECVERSION, EnvelopeSchema, _instance

NOW = datetime(2026, 9, 1, 8, 30, 12, 345678, tzinfo=timezone.utc)

EVENTS = {
    "messaging.MessagePosted.v1": {
        "chat_id": uuid.uuid4(), "message_id": uuid.uuid4(), "seq": 1042, "author_id": uuid.uuid4(),
        "on_behalf_of": None, "text": "Завтра контрольная по физике: повторите параграфы 12-14, возьмите калькуляторы.",
        "reply_to": None, "posted_at": NOW, "attachments": [], "poll": None,
    },
    "identity.UserRegistered.v1": {
        "user_id": uuid.uuid4(), "phone": "+79001234567", "email": None, "registered_via": "phone",
        "invite_token": None, "registered_at": NOW,
    },
}


def old_send(event_type: str, data: dict, event_id: str) -> bytes:
    """make_event(...).to_json() as it was: dump, load (the validation), and dump again to send."""
    entry = get_contract(event_type)
    schema = entry.data_schema()
    loaded = schema.load(schema.dump(data))
    event = CloudEvent(id=event_id, source=f"/sfera/{entry.service}", type=event_type, time=NOW, subject=None,
                       data=loaded)
    return json.dumps({
        "specversion": SPECVERSION, "id": event.id, "source": event.source, "type": event.type,
        "time": event.time.isoformat(), "subject": event.subject, "datacontenttype": CONTENT_TYPE,
        "data": event.contract.data_schema().dump(event.data),
    }, separators=(",", ":")).encode()


def old_parse(body: bytes) -> CloudEvent:
    """parse_event as it was: the envelope's marshmallow schema, then the data's."""
    envelope = _instance(EnvelopeSchema).load(json.loads(body))
    data = get_contract(envelope["type"]).data_schema().load(envelope["data"])
    return CloudEvent(id=envelope["id"], source=envelope["source"], type=envelope["type"], time=envelope["time"],
                      subject=envelope["subject"], data=data)


def new_send(event_type: str, data: dict, event_id: str) -> bytes:
    return make_event(event_type, data, event_id=event_id, time=NOW).to_json()


def per_call(fn, args: tuple, calls: int) -> float:
    """µs a call over ``calls`` calls (process CPU time: other processes on the machine do not count)."""
    t0 = time.process_time()
    for _ in range(calls):
        fn(*args)
    return (time.process_time() - t0) / calls * 1e6


def in_turns(paths: dict, calls: int, rounds: int) -> dict[str, float]:
    """The median over ``rounds`` of each path's µs a call, the paths timed one after the other in each round."""
    seen: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, (fn, args) in paths.items():
            seen[name].append(per_call(fn, args, calls))
    return {name: statistics.median(values) for name, values in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    for event_type, data in EVENTS.items():
        body = new_send(event_type, data, "bench:1:x")
        if body != old_send(event_type, data, "bench:1:x") or parse_event(body) != old_parse(body):
            raise RuntimeError(f"{event_type}: the new path's event differs from the old one's")
        try:
            parse_event(body.replace(b'"1.0"', b'"0.3"'))
        except ContractError:
            pass
        else:
            raise RuntimeError("a bad envelope was not refused")

        schema = get_contract(event_type).data_schema()
        dumped = schema.dump(data)
        loaded = schema.load(dumped)
        envelope = json.loads(body)
        timed = in_turns({
            "old send": (old_send, (event_type, data, "bench:1:x")),
            "new send": (new_send, (event_type, data, "bench:1:x")),
            "old parse": (old_parse, (body,)),
            "new parse": (parse_event, (body,)),
            "data dump": (schema.dump, (data,)),
            "data load": (schema.load, (dumped,)),
            "data dump of the load": (schema.dump, (loaded,)),
            "data dump, loading.py": (loading.dump, (schema, data)),
            "data load, loading.py": (loading.load, (schema, dumped)),
            "envelope schema load": (_instance(EnvelopeSchema).load, (envelope,)),
            "json.loads": (json.loads, (body,)),
            "json.dumps": (json.dumps, (envelope,)),
        }, args.calls, args.rounds)
        name = event_type.split(".")[1]
        print(f"{event_type} ({len(body)} bytes on the wire), CPU µs a call, median of {args.rounds} rounds of "
              f"{args.calls}, in turns:")
        for path, figure in timed.items():
            print(f"  {path:22s} {figure:7.1f} µs")
        send, parse = timed["new send"] / timed["old send"], timed["new parse"] / timed["old parse"]
        print(f"  producer (make_event + to_json): {timed['new send']:.1f} vs {timed['old send']:.1f} µs = {send:.2f}x")
        print(f"  consumer (parse_event):          {timed['new parse']:.1f} vs {timed['old parse']:.1f} µs = "
              f"{parse:.2f}x", flush=True)
        report.row("contracts", f"{name}: make_event + to_json (relay, per event)", f"{timed['new send']:.1f} µs",
                   f"dump, load, dump {timed['old send']:.1f} µs", send, "< 1x, the same bytes")
        report.row("contracts", f"{name}: parse_event (consumer, per delivery)", f"{timed['new parse']:.1f} µs",
                   f"envelope schema + data schema {timed['old parse']:.1f} µs", parse, "< 1x, the same errors")
    relay_share(args)
    print()
    print(report.table(report.rows("contracts")), flush=True)


def relay_share(args: argparse.Namespace) -> None:
    """A relay's work per notification in this process, the broker left out (shared/bus/relay.py ``to_messages``):
    identity's stored ``Account.Registered`` decoded, mapped to UserRegistered and made into the body it publishes,
    the new way and the old, in turns; and the decoding and mapping alone, so the contracts' share shows."""
    from identity.application import IdentityApplication
    from identity.domain import Account
    from identity.outbox import to_integration_events
    from shared.config import settings
    from shared.store import make_application

    app = make_application(IdentityApplication, "identity", config=settings({"PERSISTENCE": "memory"}))
    app.save(Account(phone="+79010000001", email=None, registered_via="phone"))
    notification = app.process_recorder.select_notifications(start=1, limit=1)[0]

    def decoded():
        return list(to_integration_events(app.mapper.to_domain_event(notification)))

    def relayed(send):
        for event_type, data, _ in decoded():
            send(event_type, data, f"identity:{notification.id}:{get_contract(event_type).routing_key}")

    timed = in_turns({"old": (relayed, (old_send,)), "new": (relayed, (new_send,)), "decode": (decoded, ())},
                     args.calls, args.rounds)
    old_share = (timed["old"] - timed["decode"]) / timed["old"]
    new_share = (timed["new"] - timed["decode"]) / timed["new"]
    print(f"a relay's CPU per notification (identity's Account.Registered -> UserRegistered, no broker): "
          f"{timed['new']:.1f} vs {timed['old']:.1f} µs = {timed['new'] / timed['old']:.2f}x; decoding and mapping "
          f"alone {timed['decode']:.1f} µs; the contracts' share {new_share:.0%} (was {old_share:.0%})", flush=True)
    report.row("contracts", "relay per notification: decode + map + make_event + to_json (no broker)",
               f"{timed['new']:.1f} µs (contracts {new_share:.0%})",
               f"{timed['old']:.1f} µs (contracts {old_share:.0%})", timed["new"] / timed["old"], "< 1x")


if __name__ == "__main__":
    main()
