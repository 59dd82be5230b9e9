import os
import re
import subprocess

import pytest

from machine import BINARY, ROOT, Machine

DOMAIN = "gw.test"


def readme_install_commands():
    """The README's installation block (the ```sh block after `<!-- install -->`), as lines."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"<!-- install -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no <!-- install --> block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


class CertbotFiles:
    """Certificates as certbot keeps them: /etc/letsencrypt/archive/DOMAIN/{cert,chain,fullchain,
    privkey}N.pem (folders 0700, keys 0600, root's), /etc/letsencrypt/live/DOMAIN/*.pem symbolic
    links to the newest; signed by a test CA the clients trust."""

    def __init__(self, machine, folder):
        self.machine = machine
        self.folder = folder
        self.version = 0
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/CN=wssgate test CA")
        with open(os.path.join(folder, "ext.cnf"), "w") as f:
            f.write("subjectAltName=DNS:%s\n" % DOMAIN)
        machine.write("/root/ca.pem", open(os.path.join(folder, "ca.pem")).read())

    def _openssl(self, *args):
        subprocess.run(["openssl", *args], cwd=self.folder, check=True, capture_output=True)

    def issue(self):
        """A new certificate, as `certbot renew` leaves it; returns its SHA-256 (hex)."""
        self.version += 1
        n = self.version
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", "leaf%d.key" % n, "-out", "leaf%d.csr" % n, "-subj", "/CN=%s" % DOMAIN)
        self._openssl("x509", "-req", "-in", "leaf%d.csr" % n, "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", "leaf%d.pem" % n, "-days", "10", "-extfile", "ext.cnf")
        leaf = open(os.path.join(self.folder, "leaf%d.pem" % n)).read()
        ca = open(os.path.join(self.folder, "ca.pem")).read()
        archive = "/etc/letsencrypt/archive/" + DOMAIN
        live = "/etc/letsencrypt/live/" + DOMAIN
        self.machine.write("%s/cert%d.pem" % (archive, n), leaf)
        self.machine.write("%s/chain%d.pem" % (archive, n), ca)
        self.machine.write("%s/fullchain%d.pem" % (archive, n), leaf + ca)
        self.machine.write("%s/privkey%d.pem" % (archive, n), open(os.path.join(self.folder, "leaf%d.key" % n)).read(), 0o600)
        for folder in ("/etc/letsencrypt/archive", "/etc/letsencrypt/live"):
            os.makedirs(self.machine.path(folder), exist_ok=True)
            os.chmod(self.machine.path(folder), 0o700)
        os.makedirs(self.machine.path(live), exist_ok=True)
        for name in ("cert", "chain", "fullchain", "privkey"):
            link = self.machine.path("%s/%s.pem" % (live, name))
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink("../../archive/%s/%s%d.pem" % (DOMAIN, name, n), link)
        der = subprocess.run(["openssl", "x509", "-outform", "der", "-in", "leaf%d.pem" % n],
                             cwd=self.folder, check=True, capture_output=True).stdout
        import hashlib
        return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A booted machine with wssgate installed as the README says and certbot's files for
    gw.test; the socket enabled, the service not started yet."""
    machine = Machine()
    try:
        machine.boot()
        certbot = CertbotFiles(machine, str(tmp_path_factory.mktemp("certbot")))
        machine.first_certificate = certbot.issue()
        machine.certbot = certbot
        with open(machine.path("/etc/hosts"), "a") as f:
            f.write("127.0.0.1 %s\n" % DOMAIN)
        # What the README's commands take from a checkout: the binary and rootfs/.
        subprocess.run(["mkdir", "-p", machine.path("/root/wssgate/build/static")], check=True)
        subprocess.run(["cp", BINARY, machine.path("/root/wssgate/build/static/wssgate")], check=True)
        subprocess.run(["cp", "-r", os.path.join(ROOT, "rootfs"), machine.path("/root/wssgate/rootfs")], check=True)
        subprocess.run(["cp", os.path.join(os.path.dirname(__file__), "clients.py"), machine.path("/root/clients.py")],
                       check=True)
        for line in readme_install_commands():
            line = line.replace("your.domain", DOMAIN)
            machine.run("sh", "-c", "cd /root/wssgate && " + line)
        yield machine
    finally:
        machine.shutdown()
