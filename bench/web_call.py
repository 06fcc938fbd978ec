"""A lesson page's CPU in the browser (issue #15): one person's call page in Debian's Chromium with 4
incoming videos (four others in the call, each a Chromium page publishing its fake camera and microphone
through the SFU), next to the same page of another person alone in a second call (0 incoming videos),
both measured over the same window of the same run (the machine's load is the same for both: a baseline
measured before the publishers start would flatter the four videos' page on a busy machine).

Measured with Chromium's own performance metrics of the page (CDP Performance.getMetrics): TaskDuration
(all the main thread's tasks: script, style, layout, paint) and ScriptDuration, each as seconds per second
of wall time over the window, i.e. the share of one core the page's main thread keeps busy; also the frames
the page decoded per second (its inbound-rtp framesDecoded); and, as Task/ScriptDuration are wall time
(a loaded machine's waiting counts in them), ThreadTime and ProcessTime: the CPU time of the page's main
thread and of its whole renderer process (WebRTC's decoding included). WebRTC's decoding runs on Chromium's media
threads, not the main thread: what the main thread pays is the page's own work around the videos
(the stage's re-rendering, audio levels for the active speaker, the call's polling).

    python -m bench.web_call [--seconds 15]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import requests

from bench import report
from bench.platform import SmsCapture, running_platform
from bench.school import OPERATOR, auth, wait_until
from bench.web import CHROMIUM_ARGS, approved_school, build_web_client, signed_in, signed_in_page

MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
              "--disable-features=WebRtcHideLocalIpsWithMdns"]
PUBLISHERS = 4


def world(api: str, sms: SmsCapture) -> tuple[str, dict, list[dict]]:
    """A school, its admin and five teachers in one chat; (chat, admin, teachers)."""
    org, admin = approved_school(api, sms, "+79990000012")
    people = []
    for n in range(PUBLISHERS + 1):
        link = requests.post(f"{api}/organizations/{org}/invites", headers=auth(admin["access_token"]), timeout=30,
                             json={"role": "teacher", "validity": "1d"}).json()["token"]
        person = signed_in(api, sms, f"+7916000010{n}", "Учителева", ("Ирина", "Ольга", "Мария", "Вера", "Нина")[n])
        requests.post(f"{api}/invites/{link}/membership", headers=auth(person["access_token"]),
                      timeout=30).raise_for_status()
        people.append(person)
    body = {"organization_id": org, "name": "Урок", "member_ids": [p["user_id"] for p in people]}
    made: dict = {}
    wait_until(lambda: (r := requests.post(f"{api}/chats", headers=auth(admin["access_token"]), json=body,
                                           timeout=30)).status_code == 201 and made.update(r.json()) is None)
    return made["chat_id"], admin, people


def join(browser, base: str, session: dict, call_id: str):
    page = signed_in_page(browser, base, session)
    page.set_default_timeout(120_000)  # a busy machine: five pages with cameras in one Chromium
    page.goto(f"/call/{call_id}")
    try:
        page.get_by_role("button", name="Войти в звонок").click()
        page.get_by_role("toolbar").wait_for()
    except Exception:
        raise SystemExit(f"{session['user_id']} could not join: {page.locator('main').inner_text()}") from None
    return page


def measure(pages: list, seconds: float) -> list[dict[str, float]]:
    """Each page's main-thread busy share and decoded frames per second over the same `seconds` of wall time."""
    cdps = [page.context.new_cdp_session(page) for page in pages]
    for cdp in cdps:
        cdp.send("Performance.enable")

    def sample(page, cdp) -> tuple[dict[str, float], int]:
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        frames = (page.evaluate("window.sferaStats()") or {}).get("inboundVideoFrames", 0)
        return metrics, frames

    before = [sample(page, cdp) for page, cdp in zip(pages, cdps, strict=True)]
    time.sleep(seconds)
    after = [sample(page, cdp) for page, cdp in zip(pages, cdps, strict=True)]
    out = []
    for page, cdp, (m0, f0), (m1, f1) in zip(pages, cdps, before, after, strict=True):
        wall = m1["Timestamp"] - m0["Timestamp"]
        out.append({"task": (m1["TaskDuration"] - m0["TaskDuration"]) / wall,
                    "script": (m1["ScriptDuration"] - m0["ScriptDuration"]) / wall,
                    # CPU time (not wall time) of the page's main thread and of its whole renderer process
                    # (WebRTC's decoding included): what a busy machine's waiting does not inflate.
                    "thread": (m1.get("ThreadTime", 0) - m0.get("ThreadTime", 0)) / wall,
                    "process": (m1.get("ProcessTime", 0) - m0.get("ProcessTime", 0)) / wall,
                    "fps": (f1 - f0) / wall, "videos": page.locator(".call-stage video").count(),
                    "phase": " ".join([page.locator(".call-page").get_attribute("data-phase") or "",
                                       *page.locator(".call-page [role=status]").all_inner_texts()]).strip()})
        cdp.detach()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    build_web_client()
    from playwright.sync_api import sync_playwright

    sms = SmsCapture()
    with running_platform(sms, SFERA_OPERATOR_PHONES=OPERATOR) as (stack, api):
        chat_id, admin, teachers = world(api, sms)
        *publishers, watcher, alone = [admin, *teachers]
        call_id = requests.post(f"{api}/calls", headers=auth(admin["access_token"]), timeout=30,
                                json={"chat_id": chat_id}).json()["call_id"]
        other_call = requests.post(f"{api}/calls", headers=auth(alone["access_token"]), timeout=30,
                                   json={"chat_id": chat_id, "invited_user_ids": [alone["user_id"]]}).json()["call_id"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                 args=CHROMIUM_ARGS + MEDIA_ARGS)
            page = join(browser, stack.gateway_url, watcher, call_id)
            baseline = join(browser, stack.gateway_url, alone, other_call)
            others = [join(browser, stack.gateway_url, p, call_id) for p in publishers]
            deadline = time.monotonic() + 120
            while page.locator(".call-stage video").count() < PUBLISHERS and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(5)  # every video decoding
            four, zero = measure([page, baseline], args.seconds)
            for other in others:
                other.context.close()
            browser.close()
        load = Path("/proc/loadavg").read_text().split()[0]
    print(f"a call page's main thread in Chromium (CDP Performance.getMetrics), one {args.seconds:.0f} s window "
          f"for both pages, same run (machine load average {load}):")
    for name, m in ((f"{zero['videos']} incoming videos (alone in a call, baseline)", zero),
                    (f"{four['videos']} incoming videos", four)):
        print(f"  {name:<48} TaskDuration {m['task'] * 1000:6.1f} ms/s   ScriptDuration {m['script'] * 1000:6.1f} ms/s"
              f"   main thread CPU {m['thread'] * 1000:6.1f} ms/s   renderer CPU {m['process'] * 1000:6.1f} ms/s"
              f"   decoded {m['fps']:5.1f} frames/s   ({m['phase']})")
    ratio = {k: four[k] / zero[k] if zero[k] > 0 else float("nan") for k in ("task", "script", "thread", "process")}
    print(f"  {four['videos']} videos / baseline: TaskDuration {ratio['task']:.1f}x, "
          f"ScriptDuration {ratio['script']:.1f}x, main thread CPU {ratio['thread']:.1f}x, "
          f"renderer CPU {ratio['process']:.1f}x")
    report.row("web_call", f"a call page's main thread CPU with {four['videos']} incoming videos",
               f"{four['thread'] * 1000:.0f} ms/s", f"alone in a call {zero['thread'] * 1000:.0f} ms/s",
               ratio["thread"] if ratio["thread"] == ratio["thread"] else None, "printed")


if __name__ == "__main__":
    main()
