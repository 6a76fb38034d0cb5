"""The three WebDAV servers under test, each started as a child process on a free loopback port."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import procs
from benchlib.dav import Conn, basic_auth

USER, PASSWORD = "einstein", "relativity"
APACHE_MODULES = "/usr/lib/apache2/modules"
START_TIMEOUT = 90.0


class ServerError(RuntimeError):
    pass


@dataclass
class Server:
    """A running server: where its WebDAV root is and which process tree belongs to it."""

    name: str
    dav_root: str  # URL with trailing slash
    proc: subprocess.Popen[bytes]
    log: Path
    sends_oc_checksum: bool = False  # only infiniscale understands OC-Checksum on PUT
    speaks_tus: bool = False  # only infiniscale serves TUS uploads
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        procs.stop(self.proc)


def start(name: str, workdir: Path, infiniscale_bin: Path) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    starters = {"infiniscale": lambda: start_infiniscale(workdir, infiniscale_bin),
                "apache": lambda: start_apache(workdir), "rclone": lambda: start_rclone(workdir)}
    return starters[name]()


def wait_ready(srv: Server, url: str, ok: set[int], auth: bool) -> None:
    """Poll url until it answers with one of the ok statuses, or fail with the server's log tail."""
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise ServerError(f"{srv.name} exited with {srv.proc.returncode}:\n{srv.log_tail()}")
        conn = Conn(url, basic_auth(USER, PASSWORD) if auth else {})
        try:
            r = conn.request("OPTIONS" if auth else "GET", "")
            if r.status in ok:
                return
            last = f"HTTP {r.status}"
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        finally:
            conn.close()
        time.sleep(0.2)
    raise ServerError(f"{srv.name} not ready after {START_TIMEOUT:.0f}s ({last}):\n{srv.log_tail()}")


# --- infiniscale -------------------------------------------------------------------------------

def default_infiniscale_bin() -> Path:
    """The console script installed next to the interpreter running the benchmark (the project venv)."""
    return Path(sys.executable).parent / "infiniscale"


def start_infiniscale(d: Path, binary: Path, extra_env: dict[str, str] | None = None) -> Server:
    if not binary.exists():
        raise ServerError(f"{binary} not found (run `make setup`)")
    port = procs.free_port()
    env = {**os.environ, "OCIS_BASE_DATA_PATH": str(d / "data"), "OCIS_CONFIG_DIR": str(d / "config"),
           "PROXY_TLS": "false", "PROXY_HTTP_ADDR": f"127.0.0.1:{port}", "IDM_CREATE_DEMO_USERS": "true",
           "PROXY_ENABLE_BASIC_AUTH": "true", "OCIS_URL": f"http://127.0.0.1:{port}",
           "OCIS_LOG_LEVEL": "warn", **(extra_env or {})}  # extra_env may override any of these
    log = d / "server.log"
    init = subprocess.run([str(binary), "init", "--admin-password", "admin"], env=env, cwd=d,
                          capture_output=True, timeout=120)
    if init.returncode != 0:
        out = (init.stdout + init.stderr).decode(errors="replace")[-3000:]
        raise ServerError(f"infiniscale init failed ({init.returncode}):\n{out}")
    proc = procs.spawn([str(binary), "server"], log, env=env, cwd=d)
    base = f"http://127.0.0.1:{port}"
    srv = Server("infiniscale", f"{base}/remote.php/dav/files/{USER}/", proc, log, sends_oc_checksum=True,
                 speaks_tus=True)
    wait_ready(srv, f"{base}/healthz", {200}, auth=False)
    return srv


# --- apache httpd + mod_dav_fs -----------------------------------------------------------------

APACHE_CONF = """\
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/run/httpd.pid"
DefaultRuntimeDir "{root}/run"
Mutex file:{root}/run default
ErrorLog "{root}/server.log"
LogLevel warn
{modules}
{user}
# event MPM sized well above the 16 client connections; no recycling of children
StartServers 2
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
MaxConnectionsPerChild 0
# a benchmark client keeps its connections: do not force reconnects every 100 requests
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60
Timeout 600
EnableSendfile On
TypesConfig /etc/mime.types
LimitRequestBody 0
LimitXMLRequestBody 0
DavLockDB "{root}/lock/DavLock"
DavDepthInfinity On
DocumentRoot "{root}/dav"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{root}/dav">
    Dav On
    Options None
    AllowOverride None
    AuthType Basic
    AuthName "bench"
    AuthBasicProvider file
    AuthUserFile "{root}/htpasswd"
    Require valid-user
</Directory>
"""

APACHE_MODS = ["mpm_event", "authn_core", "authn_file", "authz_core", "authz_user", "auth_basic",
               "dav", "dav_fs", "dav_lock", "alias", "mime"]


def apache_config(root: Path, port: int, as_www_data: bool) -> str:
    mods = "\n".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so" for m in APACHE_MODS)
    user = "User www-data\nGroup www-data" if as_www_data else ""
    return APACHE_CONF.format(root=root, port=port, modules=mods, user=user)


def start_apache(d: Path) -> Server:
    binary = shutil.which("apache2") or "/usr/sbin/apache2"
    if not Path(binary).exists():
        raise ServerError("apache2 not installed (make debs-bench)")
    port = procs.free_port()
    for sub in ("run", "lock", "dav"):
        (d / sub).mkdir(exist_ok=True)
    subprocess.run(["htpasswd", "-bc", str(d / "htpasswd"), USER, PASSWORD], check=True,
                   capture_output=True)
    as_root = os.geteuid() == 0
    if as_root:
        _hand_to_www_data(d)
    conf = d / "httpd.conf"
    conf.write_text(apache_config(d, port, as_root))
    log = d / "server.log"
    # -DFOREGROUND keeps the parent attached as our child, so stopping it is a plain process-group kill
    proc = procs.spawn([binary, "-f", str(conf), "-DFOREGROUND"], d / "stdout.log", cwd=d)
    srv = Server("apache", f"http://127.0.0.1:{port}/", proc, log)
    wait_ready(srv, srv.dav_root, {200}, auth=True)
    return srv


def _hand_to_www_data(d: Path) -> None:
    """Workers run as www-data: they traverse the tree, write doc root and lock dir, read htpasswd."""
    import pwd

    pw = pwd.getpwnam("www-data")
    d.chmod(0o755)
    d.parent.chmod(d.parent.stat().st_mode | 0o011)  # the harness's private temp root is 0700
    for sub in ("dav", "lock"):
        os.chown(d / sub, pw.pw_uid, pw.pw_gid)
    (d / "htpasswd").chmod(0o644)


# --- rclone serve webdav ----------------------------------------------------------------------

def start_rclone(d: Path) -> Server:
    binary = shutil.which("rclone")
    if not binary:
        raise ServerError("rclone not installed (make debs-bench)")
    port = procs.free_port()
    (d / "dav").mkdir(exist_ok=True)
    argv = [binary, "serve", "webdav", str(d / "dav"), "--addr", f"127.0.0.1:{port}",
            "--user", USER, "--pass", PASSWORD, "--config", str(d / "rclone.conf")]
    log = d / "server.log"
    proc = procs.spawn(argv, log, cwd=d)
    srv = Server("rclone", f"http://127.0.0.1:{port}/", proc, log)
    wait_ready(srv, srv.dav_root, {200}, auth=True)
    return srv


def versions(names: list[str], infiniscale_bin: Path) -> dict[str, str]:
    """Version strings for the JSON report; best effort."""
    cmds = {"apache": ["apache2", "-v"], "rclone": ["rclone", "version"],
            "infiniscale": ["git", "-C", str(Path(__file__).resolve().parents[2]), "describe", "--always",
                            "--dirty"]}
    out: dict[str, str] = {}
    for n in names:
        try:
            res = subprocess.run(cmds[n], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            res = None
        lines = res.stdout.strip().splitlines() if res and res.returncode == 0 else []
        out[n] = lines[0] if lines else "unknown"
    out["infiniscale_bin"] = str(infiniscale_bin)
    return out
