# Per device (the {key} of the route): the last readings, their average,
# and an alert while the average is above the threshold. The state is kept
# per device by the node; a deploy or a restart keeps it.
from stats import add_reading, summary

THRESHOLD = 30.0


def entrypoint(input, state, ctx):
    state = state or {"window": [], "alerts": 0}
    window = add_reading(state["window"], input["body"]["celsius"])
    stats = summary(window)
    alert = stats["average"] > THRESHOLD
    if alert:
        print(f"device {ctx.key}: average {stats['average']} above {THRESHOLD}")
    new_state = {"window": window, "alerts": state["alerts"] + (1 if alert else 0)}
    return {
        "output": {"status": 200, "body": {"device": ctx.key, **stats, "alert": alert}},
        "state": new_state,
    }
