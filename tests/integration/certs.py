# SPDX-License-Identifier: Apache-2.0
"""Test certificates made with the openssl command line in a temporary directory: a CA, a
server certificate for localhost/127.0.0.1, client certificates (valid, from another CA,
expired). EC P-256 keys: fast to generate on a loaded machine."""

import os
import subprocess

OPENSSL = "openssl"


def _run(args, cwd):
    r = subprocess.run([OPENSSL] + args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr))
    return r.stdout


def _key(d, name):
    _run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
          "-out", name + ".key"], d)


def make_ca(d, name):
    _key(d, name)
    _run(["req", "-x509", "-new", "-key", name + ".key", "-out", name + ".crt", "-days", "2",
          "-subj", "/CN=%s" % name, "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d)


def make_cert(d, name, ca, cn, serial, san=None, server=False, usage=None):
    """name.key and name.crt signed by `ca`, with the given subject CN and serial (hex).
    `usage`: the extendedKeyUsage value (default serverAuth or clientAuth after `server`)."""
    _key(d, name)
    _run(["req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", "/CN=%s" % cn], d)
    ext = ["basicConstraints=CA:FALSE",
           "extendedKeyUsage=%s" % (usage or ("serverAuth" if server else "clientAuth"))]
    if san:
        ext.append("subjectAltName=" + san)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("\n".join(ext) + "\n")
    _run(["x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
          "-set_serial", "0x%x" % serial, "-days", "2", "-sha256", "-extfile", name + ".ext",
          "-out", name + ".crt"], d)


def make_expired_cert(d, name, ca, cn):
    """A client certificate valid for one day in 2020 only (openssl ca sets past dates)."""
    _key(d, name)
    _run(["req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", "/CN=%s" % cn], d)
    db = os.path.join(d, "ca-db")
    os.makedirs(db, exist_ok=True)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("1000\n")
    conf = os.path.join(db, "ca.cnf")
    with open(conf, "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\n"
                "serial = %s/serial\ndefault_md = sha256\npolicy = p\n[p]\n"
                "commonName = supplied\n" % (db, db, db))
    _run(["ca", "-batch", "-config", conf, "-cert", ca + ".crt", "-keyfile", ca + ".key",
          "-startdate", "20200101000000Z", "-enddate", "20200102000000Z",
          "-in", name + ".csr", "-out", name + ".crt", "-notext"], d)


class Certs:
    """Everything a TLS test needs, as paths."""

    def __init__(self, d):
        self.dir = d
        make_ca(d, "ca")
        make_ca(d, "other-ca")
        make_cert(d, "server", "ca", "localhost", 0x1111,
                  san="DNS:localhost,IP:127.0.0.1", server=True)
        make_cert(d, "server2", "ca", "localhost", 0x2222,
                  san="DNS:localhost,IP:127.0.0.1", server=True)
        make_cert(d, "alice", "ca", "alice", 0xA11CE, san="email:alice@example.com")
        make_cert(d, "mallory", "other-ca", "mallory", 0xBAD)
        make_expired_cert(d, "expired", "ca", "old")

    def path(self, name):
        return os.path.join(self.dir, name)
