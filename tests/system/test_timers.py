"""timer.Interval and timer.Cron (docs/drivers.md): one message per tick
per key, exactly once across kill -9 and restart (missed ticks caught up),
the last tick kept as the timer block's state, and a bad configuration
refused."""
import json
import time

from harness import Node, check, cli, make_project, run, tmpdir, wait_for, write_files

TICKS_JS = """export default function (input, state = { ticks: [] }) {
  return { state: { ticks: [...state.ticks, input.tickMs], key: input.key } };
}
"""


def timer_project(every="1s", extra=""):
    return make_project(tmpdir() + "/clock", {
        "flowstate.yaml": "name: clock\ndurability: sync\n",
        "flows/ticks.yaml": "blocks:\n  - timer.Interval: tick\n  - js.Function: count\n",
        "drivers/tick.yaml": f"kind: timer.Interval\nevery: {every}\nkeys: [plant-1, plant-2]\ncatchUp: 100\n{extra}",
        "functions/count.js": TICKS_JS,
    })


def state(node, block, key):
    p = cli("state", "get", "ticks", block, key, "--json", data=node.data)
    if p.returncode != 0 or p.stdout.strip() in ("", "null"):
        return None
    return json.loads(p.stdout)


def check_every_second(ticks, what):
    check(len(ticks) == len(set(ticks)), f"{what}: no tick twice: {ticks}")
    check(all(t % 1000 == 0 for t in ticks), f"{what}: ticks on whole seconds: {ticks}")
    check(all(b - a == 1000 for a, b in zip(ticks, ticks[1:])), f"{what}: no tick missing: {ticks}")


def test_a_timer_ticks_each_key_once_per_tick_through_kill_9_and_catches_up_what_it_missed():
    """every 1s for two keys: each key's function sees every tick once, in order; kill -9, 3 s down, restart: the missed ticks come, none twice; the timer block's state holds the last tick"""
    project = timer_project()
    node = Node([project])
    try:
        node.start()
        for key in ("plant-1", "plant-2"):
            s = wait_for(f"{key} ticked 3 times", lambda: (lambda s: s if s and len(s["ticks"]) >= 3 else None)(
                state(node, "count", key)))
            check(s["key"] == key, f"the message names its key: {s}")
            check_every_second(s["ticks"], key)
        node.kill9()
        time.sleep(3)
        node.start()
        before_restart = time.time()
        for key in ("plant-1", "plant-2"):
            s = wait_for(f"{key} ticking after the restart",
                         lambda: (lambda s: s if s and s["ticks"][-1] >= int(before_restart) * 1000 else None)(
                             state(node, "count", key)))
            check_every_second(s["ticks"], f"{key} across kill -9")
            last = state(node, "tick", key)
            check(last and last["lastTickMs"] >= s["ticks"][-1],
                  f"the timer block's state is the last tick emitted: {last} vs {s['ticks'][-1]}")
    finally:
        node.stop()


def test_a_cron_timer_fires_on_the_next_whole_minute_once_per_key():
    """timer.Cron "* * * * *": nothing at first sight, then at the next whole minute one message per key, its time on the minute, and the timer block's state holds it"""
    project = make_project(tmpdir() + "/cron", {
        "flowstate.yaml": "name: clock\ndurability: sync\n",
        "flows/ticks.yaml": "blocks:\n  - timer.Cron: tick\n  - js.Function: count\n",
        "drivers/tick.yaml": "kind: timer.Cron\ncron: \"* * * * *\"\nkeys: [plant-1, plant-2]\n",
        "functions/count.js": TICKS_JS,
    })
    node = Node([project])
    try:
        node.start()
        started = time.time()
        for key in ("plant-1", "plant-2"):
            s = wait_for(f"{key} fired", lambda: state(node, "count", key), timeout=75)
            check(len(s["ticks"]) == 1 and s["ticks"][0] % 60000 == 0 and s["ticks"][0] > started * 1000 - 1000,
                  f"{key}: one fire, on the minute after the start: {s} (started {started})")
            last = state(node, "tick", key)
            check(last and last["lastTickMs"] == s["ticks"][0], f"the timer block's state: {last}")
    finally:
        node.stop()


def test_a_bad_timer_configuration_is_refused_at_deploy_naming_the_file_and_field():
    """every: 5ms (below 10ms) and an unknown field are refused by `flowstate deploy`, naming drivers/tick.yaml and the field; the node keeps ticking on what it ran"""
    project = timer_project()
    node = Node([project])
    try:
        node.start()
        wait_for("a first tick", lambda: state(node, "count", "plant-1"))
        for bad, field in (("every: 5ms\n", "every:"), ("every: 1s\nevry: 2s\n", "unknown field \"evry\"")):
            write_files(project, {"drivers/tick.yaml": "kind: timer.Interval\n" + bad})
            p = cli("deploy", "-m", "bad timer", "--project", project, data=node.data)
            out = p.stdout + p.stderr
            check(p.returncode != 0 and "drivers/tick.yaml" in out and field in out,
                  f"refused naming the file and {field}: rc {p.returncode}: {out}")
        n = len(state(node, "count", "plant-1")["ticks"])
        wait_for("ticking on", lambda: len(state(node, "count", "plant-1")["ticks"]) > n, timeout=10)
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_a_timer_ticks_each_key_once_per_tick_through_kill_9_and_catches_up_what_it_missed,
         test_a_cron_timer_fires_on_the_next_whole_minute_once_per_key,
         test_a_bad_timer_configuration_is_refused_at_deploy_naming_the_file_and_field])
