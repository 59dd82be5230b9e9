#!/usr/bin/env bash
# Installs Autobahn|Testsuite's `wstest` into build/autobahn-venv (Python 2.7 from pyenv).
# The suite is Python 2 only; these pins are upstream's own (the PyPI source package omits its
# requirements file, so pip would install no dependencies on its own). Idempotent and quiet
# when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=build/autobahn-venv
if [ -x "$venv/bin/wstest" ]; then exit 0; fi
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
py27=$(ls -d "$root"/versions/2.7*/bin/python2.7 2>/dev/null | head -n 1 || true)
if [ -z "$py27" ]; then
  echo "setup-autobahn: no Python 2.7 under $root/versions (pyenv install 2.7.18)" >&2
  exit 1
fi
echo "setup-autobahn: installing wstest into $venv (about 40 s, once)"
"$py27" -m pip install -q --disable-pip-version-check 'virtualenv<20.22' >/dev/null 2>&1 || true
"$py27" -m virtualenv -q "$venv" >/dev/null
"$venv/bin/pip" install -q --disable-pip-version-check \
  txaio==2.1.0 incremental==16.10.1 pyOpenSSL==19.1.0 cryptography==3.3.2 Twisted==19.10.0 \
  zope.interface==4.6.0 jinja2==2.11.3 markupsafe==1.1.1 Werkzeug==1.0.1 klein==17.10.0 \
  service_identity==18.1.0 unittest2==1.1.0 six==1.16.0 'autobahn[twisted,accelerate]==0.10.9' \
  autobahntestsuite==25.10.1 2>&1 | grep -v -i -E "deprecat|warning|python 2.7" || true
test -x "$venv/bin/wstest"
