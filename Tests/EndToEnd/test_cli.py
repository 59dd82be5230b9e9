"""The small commands: version, probe."""
import subprocess

from conftest import BINARY, ECHO_CONFIG


def test_version():
    result = subprocess.run([BINARY, "version"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0 and result.stdout.startswith("wssgate ")


def test_probe_exit_status_follows_http_status(gateway_factory):
    gw = gateway_factory(ECHO_CONFIG)
    ready = subprocess.run([BINARY, "probe", gw.url("/readyz", scheme="https"), "--insecure"], capture_output=True, text=True, timeout=10)
    assert ready.returncode == 0 and ready.stdout.strip() == "200"
    missing = subprocess.run([BINARY, "probe", gw.url("/nope", scheme="https"), "--insecure"], capture_output=True, text=True, timeout=10)
    assert missing.returncode == 1 and missing.stdout.strip() == "404"
    # Without --insecure a self-signed certificate is refused.
    strict = subprocess.run([BINARY, "probe", gw.url("/readyz", scheme="https")], capture_output=True, text=True, timeout=10)
    assert strict.returncode == 1


def test_probe_unreachable_fails():
    result = subprocess.run([BINARY, "probe", "http://127.0.0.1:1/livez", "--timeout", "2"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
