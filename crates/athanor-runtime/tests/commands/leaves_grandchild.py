"""Starts a grandchild that would outlive it (and holds its stdout open), reports its pid, and exits at once."""
import json
import os
import subprocess

grandchild = subprocess.Popen(["sleep", "1000"])
os.write(3, (json.dumps({"type": "result", "key": "grandchild", "value": grandchild.pid}) + "\n").encode())
