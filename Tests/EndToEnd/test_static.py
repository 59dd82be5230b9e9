"""The static route (and the demo page): files with their content types, index.html, ETag
revalidation — and nothing outside the folder, however the path is spelled."""
import os
import tempfile

from conftest import insecure_context, raw_http, status_of, ECHO_CONFIG


def folder():
    root = tempfile.mkdtemp(prefix="wgw")
    os.makedirs(os.path.join(root, "sub"))
    for name, text in (("index.html", "<h1>home</h1>"), ("app.js", "console.log(1)"), ("sub/index.html", "sub"),
                       (".secret", "hidden"), ("style.css", "body{}")):
        with open(os.path.join(root, name), "w") as f:
            f.write(text)
    os.symlink("/etc/passwd", os.path.join(root, "escape"))
    os.chmod(root, 0o755)
    return root


def get(gw, target, method="GET", extra=""):
    host, port = gw.address()
    response = raw_http(host, port, ("%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" % (method, target, extra)).encode())
    head, _, body = response.partition(b"\r\n\r\n")
    return status_of(response), head.decode().lower(), body


def test_static_files_and_no_way_out(gateway_factory):
    root = folder()
    gw = gateway_factory(ECHO_CONFIG + "  site:\n    path: /\n    kind: static\n    static:\n      root: %s\n" % root)
    status, head, body = get(gw, "/")
    assert status == 200 and body == b"<h1>home</h1>" and "content-type: text/html; charset=utf-8" in head
    status, head, body = get(gw, "/app.js")
    assert status == 200 and "content-type: text/javascript" in head and "x-content-type-options: nosniff" in head
    assert get(gw, "/sub/")[2] == b"sub"
    assert get(gw, "/style.css")[1].count("text/css") == 1
    for target in ("/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/sub/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
                   "/.secret", "/%2esecret", "/escape", "/missing.html", "/sub/..%2f..%2fetc%2fpasswd", "/%00"):
        assert get(gw, target)[0] == 404, target
    # Revalidation: the same ETag gives 304 with no body.
    etag = [line.split(": ", 1)[1] for line in get(gw, "/")[1].split("\r\n") if line.startswith("etag:")][0]
    status, _, body = get(gw, "/", extra="If-None-Match: %s\r\n" % etag.replace("\"", "\""))
    assert status == 304 and body == b""
    status, head, body = get(gw, "/app.js", method="HEAD")
    assert status == 200 and body == b"" and "content-length: 14" in head
    assert get(gw, "/app.js", method="POST", extra="Content-Length: 0\r\n")[0] == 405
    # WebSocket routes and health paths still win over the folder.
    assert get(gw, "/livez")[0] == 200 and get(gw, "/echo")[0] == 426


def test_embedded_default_serves_the_demo_page(gateway_factory):
    gw = gateway_factory(env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"})
    status, head, body = get(gw, "/")
    assert status == 200 and b"getWebSocketUrl" in body and "text/html" in head


def test_the_binary_alone_serves_the_demo_page_from_any_directory(gateway_factory, tmp_path):
    """Run from an empty directory, with no page installed beside it, the binary serves the demo
    page it carries: the same bytes as rootfs/usr/share/wssgate/www/index.html."""
    from conftest import BINARY, ROOT
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not os.path.exists("/usr/share/wssgate/www/index.html"), "an installed page would be served instead"
    gw = gateway_factory(args=[], env={"WSSGATE_LISTENERS_MAIN_ADDRESS": "127.0.0.1:0"}, cwd=str(empty))
    status, head, body = get(gw, "/")
    assert status == 200 and "text/html" in head
    assert body == open(os.path.join(ROOT, "rootfs", "usr", "share", "wssgate", "www", "index.html"), "rb").read()
    assert get(gw, "/index.html")[2] == body
    assert get(gw, "/other.js")[0] == 404
    # Revalidation: the ETag answers 304.
    etag = next(line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("etag:"))
    assert get(gw, "/", extra="If-None-Match: %s\r\n" % etag)[0] == 304
    assert os.listdir(str(empty)) == []


def test_static_root_must_be_a_folder(tmp_path):
    import subprocess
    from conftest import BINARY
    path = tmp_path / "w.yaml"
    path.write_text(ECHO_CONFIG + "  site:\n    path: /\n    kind: static\n    static:\n      root: /nonexistent/www\n")
    result = subprocess.run([BINARY, "check-config", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "routes.site.static.root" in result.stderr
