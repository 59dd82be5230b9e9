"""A Debian 12 machine with systemd as PID 1, booted in a container (systemd-nspawn) from a root
built from Debian's packages (scripts/system-root.sh), and wssgate installed on it as the README
says. Commands run inside it through nsenter; its files are written through its root folder."""
import json
import os
import shutil
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROOT_TAR = os.environ.get("SYSTEM_ROOT_TAR", os.path.join(ROOT, "build", "system", "root.tar"))
BINARY = os.environ.get("GATEWAY_BINARY", os.path.join(ROOT, "build", "static", "wssgate"))


class Machine:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="wssgate-system-")
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root)
        subprocess.run(["tar", "-xf", ROOT_TAR, "-C", self.root, "--numeric-owner"], check=True)
        self.pid = None
        self.nspawn = None

    def path(self, inside):
        return os.path.join(self.root, inside.lstrip("/"))

    def write(self, inside, text, mode=0o644):
        path = self.path(inside)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def read(self, inside):
        with open(self.path(inside)) as f:
            return f.read()

    def boot(self, timeout=60):
        self.log = open(os.path.join(self.dir, "console.log"), "w")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "-b", "-D", self.root, "--register=no", "--keep-unit",
             "--console=passive"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.time() + timeout
        while self.pid is None:
            assert self.nspawn.poll() is None, "systemd-nspawn ended:\n" + open(self.log.name).read()
            assert time.time() < deadline, "the container's systemd never started"
            self.pid = self._container_init()
            if self.pid is None:
                time.sleep(0.1)
        # The system bus comes a moment after PID 1: until then systemctl cannot ask.
        state = self.wait_for(
            lambda: self.run("systemctl", "is-system-running", "--wait", timeout=timeout, check=False).stdout.strip(),
            "systemctl to answer",
            timeout=timeout,
        )
        assert state in ("running", "degraded"), state

    def _container_init(self):
        """The container's PID 1: the first process named systemd below nspawn."""
        pending = [self.nspawn.pid]
        while pending:
            pid = pending.pop(0)
            try:
                with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            for child in children:
                try:
                    comm = open("/proc/%d/comm" % child).read().strip()
                except OSError:
                    continue
                if comm == "systemd":
                    return child
                pending.append(child)
        return None

    def command(self, *args):
        return ["nsenter", "-t", str(self.pid), "-a", "--", *args]

    def run(self, *args, check=True, timeout=60, input=None, env=None):
        command = list(args)
        if env:
            command = ["env", *("%s=%s" % item for item in env.items()), *command]
        result = subprocess.run(self.command(*command), capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert result.returncode == 0, "%s: %s\n%s%s" % (args, result.returncode, result.stdout, result.stderr)
        return result

    def spawn(self, *args, stdout=None):
        return subprocess.Popen(self.command(*args), stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def show(self, unit, prop):
        return self.run("systemctl", "show", "-p", prop, "--value", unit).stdout.strip()

    def wait_for(self, predicate, what, timeout=30):
        deadline = time.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            assert time.time() < deadline, "timed out waiting for " + what
            time.sleep(0.1)

    def journal(self, *args):
        """The journal's entries as dicts (journalctl -o json)."""
        out = self.run("journalctl", "--no-pager", "-o", "json", *args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def shutdown(self):
        if self.nspawn and self.nspawn.poll() is None:
            if self.pid:
                subprocess.run(self.command("systemctl", "poweroff"), capture_output=True, timeout=30)
            try:
                self.nspawn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.nspawn.kill()
                self.nspawn.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
