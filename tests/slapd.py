"""A real OpenLDAP server (Debian slapd) for the tests: its own config and database in a temp folder,
seeded offline with slapadd, started in the foreground on a free loopback port and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BASE = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "admin-secret"
USERS = {  # username: (password, display name, mail)
    "einstein": ("relativity", "Albert Einstein", "einstein@example.org"),
    "marie": ("radioactivity", "Marie Curie", "marie@example.org"),
    "admin": ("admin", "Admin", "admin@example.org"),
}
GROUPS = {"physics-lovers": ["einstein", "marie"], "users": ["einstein", "marie", "admin"]}
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def seed_ldif() -> str:
    parts = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
             f"dn: ou=users,{BASE}\nobjectClass: organizationalUnit\nou: users\n",
             f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n"]
    for name, (password, display, mail) in USERS.items():
        parts.append(f"dn: uid={name},ou=users,{BASE}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\n"
                     f"sn: {name}\ndisplayName: {display}\nmail: {mail}\nuserPassword: {password}\n")
    for group, members in GROUPS.items():
        lines = "".join(f"member: uid={m},ou=users,{BASE}\n" for m in members)
        parts.append(f"dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {group}\n{lines}")
    return "\n".join(parts)


class Slapd:
    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.uri = f"ldap://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def env(self, write: bool = True) -> dict[str, str]:
        """The server settings that point infiniscale at this directory."""
        return {"GRAPH_IDENTITY_BACKEND": "ldap", "OCIS_LDAP_URI": self.uri, "OCIS_LDAP_BIND_DN": ADMIN_DN,
                "OCIS_LDAP_BIND_PASSWORD": ADMIN_PASSWORD, "OCIS_LDAP_USER_BASE_DN": f"ou=users,{BASE}",
                "OCIS_LDAP_GROUP_BASE_DN": f"ou=groups,{BASE}",
                "GRAPH_LDAP_SERVER_WRITE_ENABLED": "true" if write else "false"}

    def start(self) -> None:
        slapd = shutil.which("slapd") or "/usr/sbin/slapd"
        slapadd = shutil.which("slapadd") or "/usr/sbin/slapadd"
        if not os.path.exists(slapd):
            raise RuntimeError("slapd is not installed (apt-get install slapd ldap-utils; `make test` does it)")
        (self.root / "db").mkdir(parents=True)
        includes = "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in SCHEMAS)
        conf = self.root / "slapd.conf"
        conf.write_text(
            f"{includes}pidfile {self.root}/slapd.pid\nmodulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f"database mdb\nmaxsize 104857600\nsuffix \"{BASE}\"\nrootdn \"{ADMIN_DN}\"\nrootpw {ADMIN_PASSWORD}\n"
            f"directory {self.root}/db\n"
            "access to attrs=userPassword by self write by anonymous auth by * none\n"
            "access to * by * read\n")
        seed = self.root / "seed.ldif"
        seed.write_text(seed_ldif())
        subprocess.run([slapadd, "-f", str(conf), "-l", str(seed), "-q"], check=True, capture_output=True,
                       timeout=60)
        self.proc = subprocess.Popen([slapd, "-f", str(conf), "-h", f"{self.uri}/", "-d", "0"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "slapd.log", "wb"),  # noqa: SIM115
                                     start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.root / 'slapd.log').read_text()[-1000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.05)
        raise RuntimeError("slapd did not start")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
