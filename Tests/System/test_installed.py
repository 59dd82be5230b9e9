"""wssgate installed as the README tells an operator to: Debian 12 with systemd 252 as PID 1, the
static binary in /usr/bin, rootfs/ in place, certbot's files as certbot leaves them (privkey.pem
0600 root's, in 0700 folders), the shipped wssgate.socket on port 443 and wssgate.service with its
dynamic user. The tests run in order on one machine, as an operator's day goes."""
import json
import time

import pytest

from conftest import DOMAIN

URL = "wss://%s" % DOMAIN
CLIENTS = "/root/clients.py"


def echo(machine, path="/echo", text="hello"):
    return machine.run("python3", CLIENTS, "echo", URL + path, text).stdout.strip()


def served_certificate(machine):
    return machine.run("python3", CLIENTS, "certificate", DOMAIN).stdout.strip()


class Holder:
    """Clients inside the machine holding connections, one round trip each every 100 ms."""

    def __init__(self, machine, *paths, name="hold"):
        self.machine = machine
        self.state = "/root/%s.json" % name
        self.urls = [URL + path for path in paths]
        self.process = machine.spawn("python3", CLIENTS, "hold", self.state, *self.urls)
        machine.wait_for(lambda: self.all_moving(), "held connections to open")

    def read(self):
        try:
            return json.loads(self.machine.read(self.state))
        except (OSError, ValueError):
            return None

    def all_moving(self, since=None):
        state = self.read()
        if not state:
            return False
        return all(
            entry["closed"] is None and entry["round_trips"] > (since or {}).get(url, {}).get("round_trips", 0)
            for url, entry in state.items()
        )

    def assert_alive(self):
        """Every connection still open, and each made a round trip since now."""
        before = self.read()
        closed = {url: entry["closed"] for url, entry in before.items() if entry["closed"]}
        assert not closed, "connections dropped: %s" % closed
        self.machine.wait_for(lambda: self.all_moving(before), "the held connections to go on")

    def wait_closed(self, timeout=60):
        self.process.wait(timeout=timeout)
        return {url: entry["closed"] for url, entry in self.read().items()}


def test_the_first_connection_starts_the_gateway_and_is_told_ready(installed):
    machine = installed
    # rootfs/ holds only what goes onto a host: the system's users are as they were.
    root = machine.run("getent", "passwd", "root").stdout.strip()
    assert root.endswith(":/root:/bin/bash"), root
    assert not any(line.startswith("wssgate:") for line in machine.read("/etc/passwd").splitlines())  # the image's
    assert machine.show("wssgate.socket", "ActiveState") == "active"
    assert machine.show("wssgate.service", "ActiveState") == "inactive"
    # The connection that wakes the gateway waits in the socket's queue until it serves.
    result = machine.run("curl", "-sS", "--cacert", "/root/ca.pem", "-w", " %{http_code}", "https://%s/readyz" % DOMAIN)
    assert result.stdout.split() == ["ready", "200"], result.stdout
    assert machine.show("wssgate.service", "ActiveState") == "active"
    assert machine.show("wssgate.service", "DynamicUser") == "yes"
    main = machine.show("wssgate.service", "MainPID")
    uid = machine.run("stat", "-c", "%u", "/proc/%s" % main).stdout.strip()
    assert uid != "0", "the gateway runs as root"
    assert served_certificate(machine) == machine.first_certificate


def test_wss_echo_and_the_shipped_worker_route(installed):
    machine = installed
    assert echo(machine, "/echo", "over wss") == "over wss"
    join = json.loads(machine.run("python3", CLIENTS, "chat", URL + "/chat?room=lobby&name=ops").stdout)
    assert join == {"type": "join", "name": "ops"}


def test_reload_applies_an_added_route_without_dropping_and_fails_for_a_broken_file(installed):
    machine = installed
    holder = Holder(machine, "/echo", "/chat?room=lobby&name=held", name="reload")
    config = machine.read("/etc/wssgate/wssgate.yaml")
    added = config + "  second:\n    path: /echo2\n    kind: echo\n"
    machine.write("/etc/wssgate/wssgate.yaml", added)
    machine.run("systemctl", "reload", "wssgate.service")
    assert echo(machine, "/echo2", "added") == "added"
    holder.assert_alive()

    machine.write("/etc/wssgate/wssgate.yaml", added.replace("kind: echo\n", "kind: nonsense\n"))
    refused = machine.run("systemctl", "reload", "wssgate.service", check=False)
    assert refused.returncode != 0, "systemctl reload succeeded with a broken configuration"
    assert echo(machine, "/echo2", "still") == "still"
    holder.assert_alive()

    # Valid, but the gateway refuses it: a change only a restart can make.
    assert "\nserver:\n" in added
    machine.write("/etc/wssgate/wssgate.yaml", added.replace("\nserver:\n", "\nserver:\n  threads: 3\n"))
    refused = machine.run("systemctl", "reload", "wssgate.service", check=False)
    assert refused.returncode != 0, "systemctl reload succeeded though the gateway refused the reload"
    holder.assert_alive()

    machine.write("/etc/wssgate/wssgate.yaml", added)
    machine.run("systemctl", "reload", "wssgate.service")
    holder.assert_alive()
    machine.installed_holder = holder


def test_a_renewed_certificate_is_served_without_dropping(installed):
    machine = installed
    holder = machine.installed_holder
    renewed = machine.certbot.issue()
    assert renewed != machine.first_certificate
    # What certbot does after a renewal: its deploy hooks, with the renewed lineage named.
    machine.run(
        "/etc/letsencrypt/renewal-hooks/deploy/wssgate",
        env={"RENEWED_LINEAGE": "/etc/letsencrypt/live/" + DOMAIN, "RENEWED_DOMAINS": DOMAIN},
    )
    assert served_certificate(machine) == renewed
    holder.assert_alive()


def test_kill_9_restarts_the_gateway_with_the_socket_kept(installed):
    machine = installed
    holder = machine.installed_holder
    main = machine.show("wssgate.service", "MainPID")
    restarts = int(machine.show("wssgate.service", "NRestarts"))
    machine.run("kill", "-9", main)
    closed = holder.wait_closed()
    assert all(state is not None for state in closed.values())
    machine.wait_for(
        lambda: machine.show("wssgate.service", "ActiveState") == "active"
        and machine.show("wssgate.service", "MainPID") not in ("0", main),
        "the gateway to be started again",
    )
    assert int(machine.show("wssgate.service", "NRestarts")) == restarts + 1
    assert machine.show("wssgate.socket", "ActiveState") == "active"
    assert echo(machine, "/echo", "again") == "again"


def test_stop_gives_every_client_1001_and_stops_the_workers_itself(installed):
    machine = installed
    holder = Holder(machine, "/echo", "/echo2", "/chat?room=lobby&name=stop", name="stop")
    workers = machine.run("pgrep", "-f", "wssgate worker chat").stdout.split()
    assert len(workers) == 2, workers
    since = machine.run("date", "+%Y-%m-%d %H:%M:%S").stdout.strip()
    machine.run("systemctl", "stop", "wssgate.service", timeout=90)
    closed = holder.wait_closed()
    assert all(state and state["code"] == 1001 for state in closed.values()), closed
    assert machine.show("wssgate.service", "Result") == "success"
    assert machine.run("pgrep", "-f", "wssgate worker", check=False).stdout.strip() == ""
    unit = machine.run("journalctl", "--no-pager", "-o", "cat", "-u", "wssgate.service", "--since", since).stdout
    assert "SIGKILL" not in unit and "Killing process" not in unit, unit
    # The gateway stopped its workers itself, during its drain; none was restarted meanwhile.
    assert "restarting" not in unit, unit
    # The socket stays: the next connection starts the gateway again.
    assert machine.show("wssgate.socket", "ActiveState") == "active"
    assert echo(machine, "/echo", "woken") == "woken"


def test_the_journal_has_priorities_and_nothing_but_the_configured_format(installed):
    machine = installed
    errors = machine.run("journalctl", "--no-pager", "-o", "cat", "-p", "err", "-u", "wssgate.service").stdout
    assert "reload refused" in errors, errors
    strays = []
    for entry in machine.journal("_SYSTEMD_UNIT=wssgate.service"):
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald's form for bytes that are not UTF-8
            message = bytes(message).decode("utf-8", "replace")
        try:
            line = json.loads(message)
            assert isinstance(line, dict) and "msg" in line and "level" in line
        except (TypeError, ValueError, AssertionError):
            strays.append(message)
    assert not strays, "lines in no log format:\n" + "\n".join(map(str, strays))
    levels = {}
    for entry in machine.journal("_SYSTEMD_UNIT=wssgate.service"):
        line = json.loads(entry["MESSAGE"])
        levels.setdefault(line["level"], set()).add(entry["PRIORITY"])
    assert levels.get("info") == {"6"} and levels.get("error") == {"3"}, levels
