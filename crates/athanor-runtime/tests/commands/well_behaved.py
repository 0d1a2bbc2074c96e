"""Uses every part of protocol v1 correctly, with nothing but the standard library."""
import json
import os
import sys

# Line-buffered, so each message leaves as soon as it is written.
protocol = os.fdopen(int(os.environ["ATHANOR_FD"]), "w", buffering=1)


def send(**message):
    protocol.write(json.dumps(message) + "\n")


with open(os.environ["ATHANOR_CONFIG"]) as file:
    config = json.load(file)

# GREETING_SUFFIX comes from the experiment's `env`, on top of the server's environment.
send(type="result", key="greeting", value=config["greeting"] + os.environ["GREETING_SUFFIX"])
names = ["ATHANOR_PROTOCOL", "ATHANOR_RUN_ID", "ATHANOR_EXPERIMENT", "ATHANOR_CONFIG", "ATHANOR_FD"]
send(type="result", key="environment", value={name: os.environ[name] for name in names})
send(type="result", key="cwd", value=os.getcwd())

for level in ["debug", "info", "warn", "error"]:
    send(type="log", level=level, message=f"a {level} line", metadata={"level_seen": level})
send(type="log", message="no level means info", field_from_a_newer_client="ignored")
for epoch in range(1, config["epochs"] + 1):
    send(type="progress", current=epoch, total=config["epochs"], message=f"epoch {epoch}")
send(type="result", key="accuracy", value=0.91)

print("plain text on stdout", flush=True)
print(json.dumps({"type": "fail", "error": "forged on stdout"}), flush=True)
print("a warning on stderr", file=sys.stderr, flush=True)
