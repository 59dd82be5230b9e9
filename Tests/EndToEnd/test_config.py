"""`wssgate check-config`: a bad configuration exits 2 with a message naming the key; a good
one prints the effective configuration. `run` refuses the same files the same way."""
import os
import subprocess
import tempfile

from conftest import BINARY


def check(text, *extra, env=None):
    directory = tempfile.mkdtemp(prefix="wgc")
    path = os.path.join(directory, "wssgate.yaml")
    with open(path, "w") as f:
        f.write(text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WSSGATE_")}
    clean.update(env or {})
    return subprocess.run([BINARY, "check-config", path, *extra], capture_output=True, text=True, env=clean, timeout=30)


GOOD = """
listeners:
  main:
    address: "127.0.0.1:8443"
    tls:
      self_signed: [localhost]
routes:
  echo:
    path: /echo
    kind: echo
"""


def assert_refused(result, key, words=""):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert key in result.stderr, result.stderr
    assert words in result.stderr, result.stderr


def test_good_configuration_prints_effective_one():
    result = check(GOOD)
    assert result.returncode == 0, result.stderr
    assert "max_message_bytes: 1048576" in result.stdout  # a default, spelled out
    assert 'self_signed: ["localhost"]' in result.stdout
    assert "ping_interval: 30s" in result.stdout


def test_unknown_key_exits_2_and_names_it():
    assert_refused(check(GOOD + "    max_mesage_bytes: 10\n"), "routes.echo.max_mesage_bytes", "unknown key")
    assert_refused(check(GOOD + "colour: blue\n"), "colour", "unknown key")


def test_wrong_type_exits_2_and_names_it():
    assert_refused(check(GOOD + "    max_message_bytes: lots\n"), "routes.echo.max_message_bytes", "not a byte count")
    assert_refused(check(GOOD + "    ping_interval: [1, 2]\n"), "routes.echo.ping_interval", "expected a value")
    assert_refused(check(GOOD + "    compression:\n      enabled: maybe\n"), "routes.echo.compression.enabled", "not a boolean")
    assert_refused(check(GOOD + "    subprotocols: chat\n"), "routes.echo.subprotocols", "expected a list")
    assert_refused(check(GOOD.replace("  echo:\n    path", "  echo: 5\n  x:\n    path")), "routes.echo", "expected a mapping")


def test_invalid_values_exit_2():
    assert_refused(check(GOOD.replace("kind: echo", "kind: teleport")), "routes.echo.kind", "teleport")
    assert_refused(check(GOOD.replace("127.0.0.1:8443", "127.0.0.1:99999")), "listeners.main.address", "port")
    assert_refused(check(GOOD.replace("path: /echo", "path: echo")), "routes.echo.path", "start with '/'")
    assert_refused(check(GOOD.replace("path: /echo", "path: /readyz")), "routes.echo.path", "reserved")
    assert_refused(check(GOOD + "    compression:\n      server_max_window_bits: 8\n"), "server_max_window_bits", "9")


def test_duplicate_route_path_exits_2():
    assert_refused(check(GOOD + "  again:\n    path: /echo\n    kind: echo\n"), "routes.again.path", "/echo")


def test_duplicate_yaml_key_exits_2():
    assert_refused(check(GOOD + "  echo:\n    path: /b\n    kind: echo\n"), "echo", "appears twice")


def test_missing_certificate_file_exits_2():
    text = GOOD.replace("self_signed: [localhost]", "certificate: /nonexistent/fullchain.pem\n      key: /nonexistent/privkey.pem")
    assert_refused(check(text), "listeners.main.tls.certificate", "/nonexistent/fullchain.pem")


def test_unparsable_pem_exits_2():
    directory = tempfile.mkdtemp(prefix="wgc")
    cert = os.path.join(directory, "fullchain.pem")
    key = os.path.join(directory, "privkey.pem")
    with open(cert, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    with open(key, "w") as f:
        f.write("nothing")
    text = GOOD.replace("self_signed: [localhost]", "certificate: %s\n      key: %s" % (cert, key))
    assert_refused(check(text), "listeners.main.tls.certificate", "PEM")


def test_key_not_matching_certificate_exits_2():
    directory = tempfile.mkdtemp(prefix="wgc")
    for name in ("a", "b"):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", os.path.join(directory, name + ".key"), "-out", os.path.join(directory, name + ".pem"),
                        "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    text = GOOD.replace("self_signed: [localhost]", "certificate: %s/a.pem\n      key: %s/b.key" % (directory, directory))
    assert_refused(check(text), "listeners.main.tls.key", "not the key")


def test_not_yaml_exits_2():
    assert_refused(check("listeners: [unclosed\n"), "configuration", "YAML")


def test_environment_and_flags_override_and_are_checked():
    result = check(GOOD, "--set", "routes.echo.max_message_bytes=2MiB", env={"WSSGATE_ROUTES_ECHO_PING_INTERVAL": "5s"})
    assert result.returncode == 0, result.stderr
    assert "max_message_bytes: 2097152" in result.stdout and "ping_interval: 5s" in result.stdout
    # Flags win over the environment, which wins over the file.
    result = check(GOOD, "--set", "routes.echo.ping_interval=7s", env={"WSSGATE_ROUTES_ECHO_PING_INTERVAL": "5s"})
    assert "ping_interval: 7s" in result.stdout
    assert_refused(check(GOOD, env={"WSSGATE_ROUTES_ECHO_PING_INTERVL": "5s"}), "WSSGATE_ROUTES_ECHO_PING_INTERVL", "no configuration key")
    assert_refused(check(GOOD, env={"WSSGATE_ROUTES_ECHO_PING_INTERVAL": "soon"}), "routes.echo.ping_interval", "not a duration")
    assert_refused(check(GOOD, "--set", "routes.echo.nope=1"), "routes.echo.nope", "no such configuration key")


def test_run_refuses_a_bad_file_with_status_2():
    directory = tempfile.mkdtemp(prefix="wgc")
    path = os.path.join(directory, "bad.yaml")
    with open(path, "w") as f:
        f.write(GOOD + "    max_message_bytes: huge\n")
    result = subprocess.run([BINARY, "run", "--config", path], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "routes.echo.max_message_bytes" in result.stderr


def test_example_configurations_are_valid():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for relative in ("Tests/Conformance/autobahn.yaml", "docs/examples/wssgate.yaml"):
        result = subprocess.run([BINARY, "check-config", os.path.join(root, relative)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, (relative, result.stderr)
