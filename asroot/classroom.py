"""A classroom: JupyterHub for an instructor and N learners, each learner with their own rootless
Docker engine, started with their JupyterLab and stopped with it.

Who runs what (root only makes the accounts and files, once per ``./lab classroom up``):

* ``dlhub`` (no login) runs JupyterHub, its proxy (configurable-http-proxy from npm, a root-owned
  read-only copy) and the class's **read-only course mirror** (Debian's docker-registry serving a copy
  of the lab's course images). It starts servers with SudoSpawner's mediator, through the one thing sudo
  lets ``dlhub`` run: root's gate (``classroom_enter``), which runs it as a member of the class and
  refuses anyone else.
* Each learner (``learner1`` …) and the instructor is a Unix account of that group with its own home
  (0700), subuid range, cgroup with limits (``cgroups.delegate``) and **network namespace**
  (``classroom_netns``: only ``lo``; their published ports, registry, kernels and engine are there and
  nowhere else). The Hub reaches a server only through root's gate (``classroom_enter``: one sudo rule)
  and the class's relay (``classroom_relay``: proxy -> their JupyterLab; their server -> the Hub's API;
  their engine -> the read-only mirror). Their server is ``classroom.server``: it starts the
  account's rootless engine and registry, then ``jupyterhub-singleuser``; when the Hub stops the server
  (or the idle culler does), the engine stops.
* Login: the Hub's passwords are generated here, printed once for the instructor, and kept only as
  scrypt hashes in a file only ``dlhub`` can read (``classroom.auth``). The Unix accounts have
  no password at all: nobody logs in to the machine with them.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import time
import urllib.request
from pathlib import Path

from asroot import cgroups as rootcg
from labengine import cgroups
from asroot import classroom_netns
from asroot.accounts import ensure_account, remove_subids
from labcore import proc, safefs
from labcore.errors import LabFailure
from labcore.state import REPO, paths
from classroom.config import (BASE, CODE, COMMENT, CONFIG, ENTER, GROUP, HUB, HUB_DIR, INSTRUCTOR, PASSWORDS,
                              PROXY_VERSION, SERVER, VENV_BIN, ClassConfig, _hash, hub_host, learner_names, tag)

__all__ = ["BASE", "GROUP", "HUB", "INSTRUCTOR", "ClassConfig", "add", "down", "root_alone", "status", "up"]

# -- accounts ---------------------------------------------------------------------------------

def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


def _ensure_group() -> None:
    if subprocess.run(["getent", "group", GROUP], capture_output=True).returncode != 0:
        _run("groupadd", "--system", GROUP)


def _ensure_hub() -> pwd.struct_passwd:
    pw, _ = ensure_account(HUB, comment=f"{COMMENT} hub", home=HUB_DIR, create_home=False, system=True,
                           subids=False, private_home=False)
    for d in (HUB_DIR, HUB_DIR / "logs", HUB_DIR / "run"):
        _hub_dir(d, pw)
    return pw


def _hub_dir(path: Path, pw: pwd.struct_passwd) -> None:
    """Root: ``path`` as a directory of the hub account's (0700), never through a link (or into a file)
    that account planted there: root changes only the directory it opened."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    fd = safefs.open_dir(path, "the hub's")
    try:
        os.fchown(fd, pw.pw_uid, pw.pw_gid)
        os.fchmod(fd, 0o700)
    finally:
        os.close(fd)


def _write_hub_file(path: Path, text: str, pw: pwd.struct_passwd, mode: int = 0o600) -> None:
    """Root: ``text`` as ``path`` in a directory the hub account owns, for that account: a new file
    (O_EXCL, no link followed), owned and moded by its descriptor, renamed over whatever was there."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as f:
            os.fchown(f.fileno(), pw.pw_uid, pw.pw_gid)
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ensure_member(name: str) -> tuple[pwd.struct_passwd, bool]:
    """A learner's (or the instructor's) account; True if made now. Refuses an account that exists
    but is not the classroom's (a real user of this machine). No password and no login shell: nobody
    logs in to the machine with it (its terminals run bash, ``labctl.jupyter``'s ``SHELL``)."""
    return ensure_account(name, comment=COMMENT, groups=(GROUP,),
                          claim=f"An account '{name}' already exists on this machine and is not the classroom's: "
                                "choose other names (./lab classroom add NAME) or remove that account.")


# -- no way in but the Hub ---------------------------------------------------------------------
# A member's shell is bash (their JupyterLab terminal runs it), but nothing else may start their
# processes outside their network namespace and cgroup: no password (nobody logs in), and should cron,
# at or an SSH server be installed on the machine, they refuse the class's accounts too (an SSH key a
# member writes into their own home, ssh -N and -L, would forward ports around their namespace).
SSHD_DROPIN = Path("/etc/ssh/sshd_config.d") / f"{BASE.name}.conf"
DENY_LISTS = (Path("/etc/cron.deny"), Path("/etc/at.deny"))


def _deny_other_ways_in(names: list[str], remove: bool = False) -> None:
    """Root: ``names`` in cron's and at's deny lists (out of them with ``remove``), and sshd's
    ``DenyGroups`` for the class's group (where an SSH server is installed: ``classroom up`` again
    after installing one)."""
    for f in DENY_LISTS:
        try:
            have = safefs.read_private(f).decode().splitlines()
        except FileNotFoundError:
            have = []
        want = [n for n in have if n not in names] if remove else have + [n for n in names if n not in have]
        if want != have and not want:
            f.unlink()  # made by the class (an empty list denies nobody, as no list does)
        elif want != have:
            safefs.write_private(f, "".join(n + "\n" for n in want), mode=0o644)
    if remove:
        SSHD_DROPIN.unlink(missing_ok=True)
    elif (SSHD_DROPIN.parent.parent / "sshd_config").exists():  # an SSH server is installed
        SSHD_DROPIN.parent.mkdir(mode=0o755, exist_ok=True)
        safefs.write_private(SSHD_DROPIN, f"# Docker Lab classroom: members reach the machine through the Hub "
                                          f"only\nDenyGroups {GROUP}\n", mode=0o644)


# -- passwords (the Hub's, never the machine's) -----------------------------------------------

def _set_passwords(names: list[str], hub: pwd.struct_passwd, force: bool = False) -> dict[str, str]:
    """A new password for every name that has none yet (``force``: for each name); returns those
    (printed once, never stored)."""
    known = json.loads(safefs.read_private(PASSWORDS)) if PASSWORDS.exists() else {}
    new = {n: secrets.token_urlsafe(9) for n in names if force or n not in known}
    known.update({n: _hash(pw) for n, pw in new.items()})
    _write_hub_file(PASSWORDS, json.dumps(known, indent=1, sort_keys=True), hub)
    return new


# -- shared, read-only parts ------------------------------------------------------------------

def _proxy() -> Path:
    """configurable-http-proxy from npm, root-owned and read-only to everyone else."""
    target = BASE / "proxy"
    exe = target / "node_modules" / ".bin" / "configurable-http-proxy"
    if exe.exists():
        return exe
    if not shutil.which("npm"):
        raise LabFailure("npm is missing (JupyterHub's proxy comes from npm): run 'apt-get install npm', "
                         "then ./lab classroom up again.")
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(target),
                        f"configurable-http-proxy@{PROXY_VERSION}"], capture_output=True, text=True)
    if r.returncode != 0 or not exe.exists():
        raise LabFailure(f"npm could not install configurable-http-proxy {PROXY_VERSION}: "
                         f"{(r.stderr or r.stdout).strip().splitlines()[-1:]}; check access to the npm registry.")
    subprocess.run(["chmod", "-R", "go-w,a+rX", str(target)], check=True)
    return exe


def _mirror_storage() -> Path:
    """A copy of the lab's course images (its upstream registry's storage) for the class mirror."""
    lab_home = paths().home
    src = lab_home / "registry" / "upstream"
    if not (src / "docker").exists():
        raise LabFailure("The course images are not built yet: run './lab up' once, then ./lab classroom up.")
    dst = BASE / "registry" / "course"
    safefs.remove_tree(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(dst.parent, 0o755)
    _copy_regular_tree(lab_home, Path("registry", "upstream"), dst)
    return dst


def _copy_regular_tree(top: Path, rel: Path, dst: Path) -> None:
    """Root: ``top/rel`` (another account's) as ``dst``, root's and world-readable
    (:func:`safefs.copy_regular_tree`)."""
    try:
        safefs.copy_regular_tree(top, rel, dst, mode=0o644, dir_mode=0o755)
    except OSError as e:
        raise LabFailure(f"Could not copy {top / rel} ({e.strerror or e}): check it is the lab's own directory, "
                         "then ./lab classroom up again.") from None


RELAY_PID = BASE / "classroom-relay.pid"
SUDOERS = Path(f"/etc/sudoers.d/{BASE.name}")  # the hub account's one rule: root's gate
RELEASED = ("labcore", "labengine", "kernel_ext", "labs/grading", "labs/locale", "labctl", "classroom", "grader",
            "notebooks")  # what a member's server, kernels and the Hub import or copy; no solutions among them


def publish_code() -> Path:
    """Root: the course's code and chapters as class members and the hub account run them, root-owned and
    read-only under :data:`CODE` (their ``PYTHONPATH``); made anew by every ``classroom up``. The clone's
    ``.git``, ``labs/source``, ``labs/src`` and tests are not in it (``system.protect_solutions`` keeps
    them from other accounts altogether)."""
    safefs.remove_tree(CODE)
    CODE.mkdir(mode=0o755, parents=True)
    (CODE / "labs").mkdir(mode=0o755)
    for name in RELEASED:
        _copy_regular_tree(REPO, Path(name), CODE / name)
    safefs.copy_file(REPO / "labs" / "__init__.py", CODE / "labs" / "__init__.py", mode=0o644)
    # Byte code for the copies (members cannot write here: without it every server, kernel and progress
    # probe would compile the course again at each start)
    subprocess.run([str(VENV_BIN / "python"), "-I", "-m", "compileall", "-q", "-j", "0", str(CODE)], check=True,
                   capture_output=True, timeout=600)
    subprocess.run(["chmod", "-R", "go-w,a+rX", str(CODE)], check=True)
    return CODE


def _spawner_scripts() -> None:
    """Root-owned, read-only: the gate the hub may run as root (``dockerlab-enter``), and the server
    launcher it has the member's mediator start (``classroom.mediator``)."""
    from asroot.classroom_enter import script

    SERVER.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(SERVER.parent, 0o755)
    safefs.write_private(SERVER, f"#!/bin/sh\nexport PYTHONPATH={CODE}\n"
                         f"exec {VENV_BIN / 'python'} -m classroom.server \"$@\"\n", mode=0o755)
    safefs.write_private(ENTER, script(), mode=0o755)
    for old in ("dockerlab-progress", "sudospawner", "sudospawner-singleuser"):  # the launchers before the gate
        (SERVER.parent / old).unlink(missing_ok=True)
    for f in (SERVER, ENTER):
        os.chown(f, 0, 0)
        os.chmod(f, 0o755)


PACKAGES = ("labcore", "labengine", "kernel_ext", "labs", "labctl", "classroom", "grader", "courseimage", "asroot")


def _code_is_roots() -> None:
    """The gate runs this project's Python as root: nobody else may be able to change a file it could
    import (the packages, the venv with its ``.pth`` files and byte code, the standard library), a
    directory above them, or a link they hold (:func:`root_alone`)."""
    import sysconfig

    paths = sysconfig.get_paths()
    trees = [VENV_BIN.parent, *(REPO / name for name in PACKAGES if (REPO / name).exists()),
             *{Path(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib")}]
    if why := root_alone(trees):
        raise LabFailure(f"{why}: the classroom's gate runs this code as root, so only root may change it "
                         f"(chown -R root: it, chmod -R go-w it), then ./lab classroom up again.")


def _not_roots_alone(path: str, st: os.stat_result, sticky_ok: bool = False) -> str:
    if st.st_uid != 0:
        return f"{path} belongs to uid {st.st_uid}, not root"
    if st.st_mode & 0o022 and not (sticky_ok and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
        return f"{path} is writable by its group or others"
    return ""


def _above_is_roots(path: str) -> str:
    """Every directory above ``path`` (resolved) root's and writable by root alone (a sticky one, like /tmp,
    is fine: nobody else can rename root's entry in it)."""
    d = os.path.dirname(path)
    while True:
        if why := _not_roots_alone(d, os.lstat(d), sticky_ok=True):
            return why
        if d == "/":
            return ""
        d = os.path.dirname(d)


def root_alone(trees: list[Path]) -> str:
    """Empty if every file and directory in ``trees`` (walked without following a link), every directory
    above them, and the target of every link among them is root's and writable by root alone; else the
    first that is not, in a few words. A link may point inside the trees, or to such a file outside
    them (Debian's ``sitecustomize.py`` -> ``/etc``); a link to a directory outside is refused."""
    tops = [os.path.realpath(t) for t in trees]
    inside = tuple(t.rstrip("/") + "/" for t in tops)
    for top in tops:
        if why := _above_is_roots(top) or _not_roots_alone(top, os.lstat(top)):
            return why
        for d, dirs, files in os.walk(top, onerror=_raise):
            for name in dirs + files:
                path = os.path.join(d, name)
                st = os.lstat(path)
                if why := _not_roots_alone(path, st) if not stat.S_ISLNK(st.st_mode) else _link_is_roots(
                        path, st, inside):
                    return why
    return ""


def _link_is_roots(path: str, st: os.stat_result, inside: tuple[str, ...]) -> str:
    if st.st_uid != 0:
        return f"{path} belongs to uid {st.st_uid}, not root"
    target = os.path.realpath(path)
    if (target + "/").startswith(inside):
        return ""  # walked as part of the trees
    try:
        tst = os.stat(target)
    except OSError:  # whoever may make it could put code there
        return f"{path} is a link to {target}, which is missing, outside the code"
    if not stat.S_ISREG(tst.st_mode):
        return f"{path} is a link to {target}, a directory outside the code"
    return _not_roots_alone(target, tst) or _above_is_roots(target)


def _raise(e: OSError) -> None:
    raise e


def _sudoers() -> None:
    _code_is_roots()
    publish_code()
    _spawner_scripts()
    rule = (f"# Docker Lab classroom: the Hub may start a class member's server and ask their engine for\n"
            f"# their progress, through root's gate (it checks the member and runs only those two), nothing else.\n"
            f"{HUB} ALL=(root) NOPASSWD: {ENTER}\n")
    if not shutil.which("visudo"):
        r = subprocess.run(["apt-get", "install", "-y", "-q", "sudo"], capture_output=True, text=True,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if r.returncode != 0 or not shutil.which("visudo"):
            raise LabFailure("sudo is missing (the Hub starts servers with it) and apt-get could not install it: "
                             "run 'apt-get install sudo', then ./lab classroom up again.")
    tmp = SUDOERS.with_suffix(".tmp")
    safefs.write_private(tmp, rule, mode=0o440)
    if subprocess.run(["visudo", "-cf", str(tmp)], capture_output=True).returncode != 0:
        tmp.unlink()
        raise LabFailure("The classroom's sudo rule does not parse: please report this.")
    tmp.replace(SUDOERS)


def _origins(cfg: ClassConfig) -> str:
    """The lines that give each member's server (and the progress page) an origin of its own."""
    if not cfg.subdomain_host:
        return ("# --single-origin: every server on the Hub's origin. A page a member's server serves acts, in\n"
                "# the browser of whoever opens it, with that person's rights (JupyterHub's security overview).\n")
    https = cfg.subdomain_host.startswith("https://")
    return (f"# Each member's server on an origin of its own, <name>.<host> (JupyterHub's security overview): a\n"
            f"# page one member serves cannot read or act on the Hub, another member's server or the progress page\n"
            f"# in the browser of whoever opens it.\n"
            f"c.JupyterHub.subdomain_host = {cfg.subdomain_host!r}\n"
            + ("c.JupyterHub.cookie_host_prefix_enabled = True  # __Host- cookies: no cookie tossing from a "
               "member's host\n" if https else
               "# (cookie_host_prefix_enabled needs HTTPS: __Host- cookies are Secure)\n"))


def hub_config(cfg: ClassConfig, proxy: Path, hub_port: int, api_port: int, progress_port: int = 0) -> str:
    """``jupyterhub_config.py``, as text."""
    members = sorted({*cfg.learners, cfg.instructor})
    return f"""# Written by ./lab classroom up; edits are replaced on the next up.
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = {f"http://{cfg.ip}:{cfg.port}"!r}
c.JupyterHub.hub_bind_url = {f"http://127.0.0.1:{hub_port}"!r}
c.ConfigurableHTTPProxy.api_url = {f"http://127.0.0.1:{api_port}"!r}
c.ConfigurableHTTPProxy.command = [{str(proxy)!r}]
c.JupyterHub.db_url = {f"sqlite:///{HUB_DIR / 'jupyterhub.sqlite'}"!r}
c.JupyterHub.cookie_secret_file = {str(HUB_DIR / 'cookie_secret')!r}
c.JupyterHub.pid_file = {str(HUB_DIR / 'run' / 'jupyterhub.pid')!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "classroom.auth.ClassroomAuthenticator"
c.ClassroomAuthenticator.password_file = {str(PASSWORDS)!r}
c.ClassroomAuthenticator.class_config = {str(CONFIG)!r}  # members now (classroom add needs no restart)
c.Authenticator.allowed_users = set({members!r})
{_origins(cfg)}# The instructor is not a Hub admin either (a second wall, and the only one with --single-origin, where a
# page a learner's server serves, opened by the instructor, acts with the instructor's rights): the
# instructor has what teaching needs — the admin page, the class list, starting and stopping learners'
# servers, the progress page — and nothing that reaches into another account: no tokens, no user
# management, no access to learners' servers.
c.JupyterHub.spawner_class = "classroom.spawner.ClassSpawner"
c.ClassSpawner.enter_path = {str(ENTER)!r}  # sudo -n ENTER MEMBER spawner: the mediator as the member, \
in their namespace
c.ClassSpawner.class_config = {str(CONFIG)!r}  # member -> port (the relay's host side)
c.Spawner.default_url = "/lab/tree/notebooks/00-index.ipynb"
c.Spawner.http_timeout = 120
c.Spawner.start_timeout = 240
c.Spawner.environment = {{"LAB_CLASS_MIRROR": {cfg.mirror!r}, "LAB_CLASS_ENGINE": {cfg.engine_root!r},
                         "LAB_CLASS_RELEASE": {str(RELEASE)!r},
                         "LAB_CLASS_MIRROR_STORAGE": {str(BASE / "registry" / "course")!r},
                         "LAB_CLASS_ENGINE_VERSION": {cfg.engine_version!r},
                         "LAB_CLASS_INSTRUCTOR": {cfg.instructor!r}, "PYTHONPATH": {str(CODE)!r}}}
c.JupyterHub.services = [
    {{"name": "idle-culler", "command": [{str(VENV_BIN / 'python')!r}, "-m", "jupyterhub_idle_culler",
                                         "--timeout=3600", "--cull-every=300"]}},
    {{"name": "progress", "url": {f"http://127.0.0.1:{progress_port}"!r}, "oauth_no_confirm": True,
     "command": [{str(VENV_BIN / 'python')!r}, "-m", "classroom.progress_service"],
     "environment": {{"LAB_CLASS_ENTER": {str(ENTER)!r}, "LAB_CLASS_INSTRUCTOR": {cfg.instructor!r},
                     "PYTHONPATH": {str(CODE)!r}}}}},
]
c.JupyterHub.load_roles = [
    {{"name": "idle-culler", "services": ["idle-culler"],
     "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}},
    {{"name": "progress", "services": ["progress"], "scopes": ["list:users", "read:users", "read:servers"]}},
    {{"name": "progress-viewer", "users": [{cfg.instructor!r}], "scopes": ["access:services!service=progress"]}},
    {{"name": "instructor", "users": [{cfg.instructor!r}],
     "scopes": ["self", "admin-ui", "list:users", "read:users", "read:servers", "servers"]}},
]
"""


# -- processes --------------------------------------------------------------------------------

def _hub_pidfile() -> Path:
    return BASE / "jupyterhub.pid"  # root's record of the process it started (runuser ... jupyterhub)


def _mirror_registry(cfg: ClassConfig):  # type: ignore[no-untyped-def]
    from labengine.registry import Registry

    port = int(cfg.mirror.rpartition(":")[2]) if cfg.mirror else 5200
    return Registry(name="class-mirror", port=port, storage=BASE / "registry" / "course",
                    run=HUB_DIR / "run", logs=HUB_DIR / "logs", readonly=True)


def _hub_env() -> dict[str, str]:
    return {"HOME": str(HUB_DIR), "USER": HUB, "LOGNAME": HUB, "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": str(CODE), "LANG": "C.UTF-8"}


def _start_as_hub(argv: list[str], pidfile: Path, log: Path) -> int:
    """Start ``argv`` as the hub account: the child drops root itself before exec (no root process
    stays behind as its parent, unlike ``runuser``)."""
    pw = pwd.getpwnam(HUB)

    def drop() -> None:
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        os.chdir(HUB_DIR)

    return proc.start(argv, pidfile, log, env=_hub_env(), preexec=drop, exact_env=True)


def _hub_ready(cfg: ClassConfig) -> bool:
    try:
        with urllib.request.urlopen(f"http://{cfg.ip}:{cfg.port}/hub/api/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def up(n: int, ip: str = "127.0.0.1", port: int = 8000, say=print,  # type: ignore[no-untyped-def]
       names: list[str] | None = None, instructor: str = INSTRUCTOR,
       host: str | None = None) -> tuple[ClassConfig, dict[str, str]]:
    """Root: accounts, passwords, shared parts, then JupyterHub as ``dlhub``. Idempotent. Returns the
    configuration and the passwords made now (the caller shows them once). ``host``: :func:`hub_host`."""
    if os.geteuid() != 0:
        raise LabFailure("A classroom makes Unix accounts: run 'sudo ./lab classroom up --learners N'.")
    if names is None and not 1 <= n <= 200:
        raise LabFailure("--learners must be between 1 and 200.")
    host = hub_host(ip, host)
    from asroot import gradeaccounts
    from asroot.system import check_userns

    check_userns()
    BASE.mkdir(parents=True, exist_ok=True)
    os.chmod(BASE, 0o755)
    old = ClassConfig.load() if CONFIG.exists() else ClassConfig(instructor=instructor)
    cfg = ClassConfig(learners=sorted(set(old.learners) | set(names or learner_names(n)), key=_order), ip=ip,
                      instructor=old.instructor, member_ports=old.member_ports, host=host)
    _ensure_group()
    hub = _ensure_hub()
    for name in [cfg.instructor, *cfg.learners]:
        _ensure_member(name)
        rootcg.delegate(name, cgroups.LabLimits(memory_mb=cfg.memory_mb, pids=cfg.pids), systemd=False)
    _deny_other_ways_in([cfg.instructor, *cfg.learners])
    binaries = gradeaccounts.engine_binaries()
    cfg.engine_root, cfg.engine_version = binaries.root, binaries.version
    running = _hub_pid()
    if running:
        cfg.port, cfg.mirror, cfg.inner_ports = old.port, old.mirror, old.inner_ports
    else:
        cfg.port = proc.free_port(port)
        cfg.mirror = cfg.mirror or f"127.0.0.1:{proc.free_port(5200)}"
        taken = {cfg.port}
        for want in (8081, 8001, 8071):
            cfg.inner_ports.append(proc.free_port(want, avoid=taken))
            taken.add(cfg.inner_ports[-1])
    proxy = _proxy()
    release = paths().home / "grading" / "release"
    if release.exists():
        publish_release(release)
    if not running:
        _mirror_storage()
    _sudoers()
    passwords = _set_passwords([cfg.instructor, *cfg.learners], hub)
    cfg.save()
    conf = HUB_DIR / "jupyterhub_config.py"
    text = hub_config(cfg, proxy, *cfg.inner_ports)
    if running and conf.exists() and safefs.read_private(conf).decode() == text:
        pass
    else:
        if running:
            _stop_hub()
        _write_hub_file(conf, text, hub)
    reg = _mirror_registry(cfg)
    _start_as_hub_registry(reg, hub)
    _isolate(cfg)
    if not _hub_pid():
        log = HUB_DIR / "logs" / "jupyterhub.log"
        _start_as_hub([str(VENV_BIN / "jupyterhub"), "-f", str(conf)], _hub_pidfile(), log)
        proc.wait_for(lambda: _hub_ready(cfg), 90, "JupyterHub", log)
    say(f"classroom ready: {cfg.url} (instructor: {cfg.instructor}; learners: {', '.join(cfg.learners)})")
    return cfg, passwords


def _added_relays() -> list[Path]:
    return sorted(BASE.glob("classroom-relay-*.pid"))


def _isolate(cfg: ClassConfig, added: str = "") -> None:
    """Root: each member's network namespace, their port on the host's loopback, and the relay that
    joins them to the Hub's proxy, the Hub's API and the course mirror (``classroom_netns``).

    ``added``: one learner more, with a relay of their own, so the class's relay and every open
    JupyterLab's connection through it stay up; the next ``classroom up`` folds them into one again."""
    members = [cfg.instructor, *cfg.learners]
    for m in [added] if added else members:
        classroom_netns.ensure(BASE.name, m)
    mirror = int(cfg.mirror.rpartition(":")[2])
    cfg.member_ports = classroom_netns.allocate_ports(members, cfg.member_ports,
                                                      avoid={cfg.port, mirror, *cfg.inner_ports})
    cfg.save()
    if added:
        ports, pidfile, log = ({added: cfg.member_ports[added]}, BASE / f"classroom-relay-{added}.pid",
                               f"relay-{added}.log")
    else:
        for extra in _added_relays():
            classroom_netns.stop_relay(extra)
            extra.unlink(missing_ok=True)
        ports, pidfile, log = cfg.member_ports, RELAY_PID, "relay.log"
    argv = classroom_netns.relay_argv(BASE.name, ports, [cfg.inner_ports[0], mirror], HUB)
    classroom_netns.start_relay(argv, pidfile, HUB_DIR / "logs" / log,
                                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})


def new_passwords(names: list[str]) -> dict[str, str]:
    """Root: new Hub passwords for these class members (a learner forgot theirs); shown once."""
    cfg = ClassConfig.load()
    unknown = [n for n in names if n not in {*cfg.learners, cfg.instructor}]
    if unknown:
        raise LabFailure(f"{', '.join(unknown)} is not in the class: ./lab classroom status lists who is.")
    return _set_passwords(names, pwd.getpwnam(HUB), force=True)


def remove_accounts() -> None:
    """Root, for the tests' own classroom only: delete its accounts, files, group and sudo rule."""
    if not tag():
        raise LabFailure("Only a test classroom is removed this way; the instructor's stays.")
    cfg = ClassConfig.load()
    for name in [*cfg.learners, cfg.instructor, HUB]:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
        remove_subids(name)
        for base in cgroups.bases(name):
            cgroups.rmdir_tree(base)
        classroom_netns.remove(BASE.name, name)
    _deny_other_ways_in([*cfg.learners, cfg.instructor], remove=True)
    subprocess.run(["groupdel", GROUP], capture_output=True)
    safefs.remove_tree(Path("/run") / BASE.name)  # the members' run directories (classroom_enter)
    SUDOERS.unlink(missing_ok=True)
    safefs.remove_tree(BASE)


def _order(name: str) -> tuple[int, str]:
    digits = "".join(c for c in name if c.isdigit())
    return (int(digits) if digits else 0, name)


def _start_as_hub_registry(reg, hub: pwd.struct_passwd) -> None:  # type: ignore[no-untyped-def]
    """The class mirror, as ``dlhub`` (read-only storage owned by root)."""
    if reg.pid():
        return
    reg.config.parent.mkdir(parents=True, exist_ok=True)
    safefs.write_private(reg.config, reg.config_text(), mode=0o644)
    log = reg.log
    _start_as_hub(["/usr/bin/docker-registry", "serve", str(reg.config)], reg.pidfile, log)
    proc.wait_for(reg.ready, 30, "The class's course mirror", log)


def _hub_pid() -> int | None:
    return proc.running_pid(_hub_pidfile(), "jupyterhub")


def _stop_hub() -> bool:
    return proc.stop(_hub_pidfile(), "jupyterhub", timeout=60)


def down(say=print) -> None:  # type: ignore[no-untyped-def]
    """Root: stop the Hub (it stops the servers, which stop their engines), the mirror, and whatever a
    class member still runs; the accounts and their files stay (``--purge`` is not offered: the
    learners' work is theirs)."""
    if os.geteuid() != 0:
        raise LabFailure("Run 'sudo ./lab classroom down'.")
    cfg = ClassConfig.load()
    if _stop_hub():
        say("JupyterHub stopped")
    reg = _mirror_registry(cfg)
    if proc.stop(reg.pidfile, "docker-registry"):
        say("class mirror stopped")
    if classroom_netns.stop_relay(RELAY_PID):
        say("relay stopped")
    for extra in _added_relays():
        classroom_netns.stop_relay(extra)
        extra.unlink(missing_ok=True)
    from asroot.gradeaccounts import account_pids

    for name in [HUB, cfg.instructor, *cfg.learners]:
        try:
            uid = pwd.getpwnam(name).pw_uid
        except KeyError:
            continue
        left = account_pids(uid)
        for pid in left:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if left:
            say(f"{name}: {len(left)} leftover processes stopped")
    for name in [cfg.instructor, *cfg.learners]:
        classroom_netns.remove(BASE.name, name)
    time.sleep(0.2)


RELEASE = BASE / "release"  # the labs' student versions (./lab grade generate), copied into each learner's course
MAX_NOTEBOOK = 20 << 20


def publish_release(src: Path) -> list[str]:
    """Root: the labs as learners get them, root-owned and read-only; each learner's server copies
    them into their course once (``labs/labN/labN.ipynb``). Returns the labs published."""
    import re

    home = paths().home  # the lab account's: no link of theirs is followed from here (nor from src)
    top, rel = (home, src.relative_to(home)) if src.is_relative_to(home) else (src, Path())
    found = {d.name: _read_member_file(top, rel / d.name / f"{d.name}.ipynb")
             for d in src.glob("lab*") if re.fullmatch(r"lab[0-9]+", d.name)}
    labs = sorted(lab for lab, data in found.items() if data is not None)
    safefs.remove_tree(RELEASE)
    for lab in labs:
        (RELEASE / lab).mkdir(parents=True)
        safefs.write_private(RELEASE / lab / f"{lab}.ipynb", found[lab] or b"", mode=0o644)
    if RELEASE.exists():
        subprocess.run(["chmod", "-R", "go-w,a+rX", str(RELEASE)], check=True)
    return labs


def _read_member_file(home: Path, rel: Path) -> bytes | None:
    """A learner's file ``home/rel``, read by root without following any link they planted; None if unusable."""
    return safefs.read_under(home, *rel.parts, limit=MAX_NOTEBOOK)


def _collect_dir(out: Path) -> int:
    """Root: ``out`` made now, or an existing directory of root's that only root can change; its fd."""
    try:
        out.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as e:
        raise LabFailure(f"Could not make {out} ({e.strerror}): collect into a new directory.") from None
    try:
        fd = safefs.open_dir(out)
    except OSError:
        raise LabFailure(f"{out} is not a directory: collect into a new directory.") from None
    st = os.fstat(fd)
    if st.st_uid != 0 or st.st_mode & 0o022:
        os.close(fd)
        raise LabFailure(f"{out} belongs to another account (or others may write in it): collect into a new "
                         "directory, which root makes.")
    os.fchmod(fd, 0o700)
    return fd


def collect(out: Path, say=print) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Root: every learner's lab notebooks into ``out/<learner>/<labN>/labN.ipynb`` — nbgrader's
    "submitted" layout, what ``./lab grade all OUT`` takes. Returns learner -> labs collected."""
    if os.geteuid() != 0:
        raise LabFailure("Collecting reads every learner's files: run 'sudo ./lab classroom collect DIR'.")
    cfg = ClassConfig.load()
    labs = sorted(d.name for d in RELEASE.glob("lab*")) if RELEASE.exists() else []
    top = _collect_dir(out)
    got: dict[str, list[str]] = {}
    try:
        for name in cfg.learners:
            home = Path(pwd.getpwnam(name).pw_dir)
            for lab in labs:
                data = _read_member_file(home, Path(".dockerlab", "course", "labs", lab, f"{lab}.ipynb"))
                if data is None:
                    continue
                safefs.write_under(top, [name, lab], f"{lab}.ipynb", data)
                got.setdefault(name, []).append(lab)
    finally:
        os.close(top)
    for name in cfg.learners:
        say(f"{name}: {', '.join(got.get(name, [])) or 'nothing to collect'}")
    return got


def status() -> str:
    cfg = ClassConfig.load()
    hub = "running" if _hub_pid() else "stopped"
    relay = "running" if proc.running_pid(RELAY_PID, "asroot.classroom_relay") else "stopped"
    lines = [f"JupyterHub  {hub:<8} {cfg.url}", f"mirror      {cfg.mirror} (read-only)",
             f"relay       {relay:<8} (a network namespace per member; the proxy reaches them on "
             f"{', '.join(f'{m}:{p}' for m, p in sorted(cfg.member_ports.items()))})",
             "origins     " + (f"one per server, e.g. {cfg.server_url(cfg.instructor)}" if cfg.host
                                  else "one for every server (--single-origin)"),
             f"instructor  {cfg.instructor}", f"learners    {', '.join(cfg.learners)}",
             f"engine      rootless {cfg.engine_version} per learner, {cfg.memory_mb} MiB and {cfg.pids} "
             "processes each"]
    return "\n".join(lines)


def add(name: str, say=print) -> None:  # type: ignore[no-untyped-def]
    """Root: one more learner, while the class works: the Hub is not restarted (that would stop every
    learner's server) — it lets in whoever classroom.json lists — and the new learner gets a relay of
    their own (restarting the class's would drop every open connection)."""
    import re

    if not re.fullmatch(r"[a-z][a-z0-9-]{1,30}", name):
        raise LabFailure("A learner's name is 2-31 lowercase letters, digits or '-', starting with a letter.")
    cfg = ClassConfig.load()
    if name in cfg.learners:
        say(f"{name} is already in the class")
        return
    cfg.learners.append(name)
    cfg.save()
    _ensure_member(name)
    _deny_other_ways_in([name])
    rootcg.delegate(name, cgroups.LabLimits(memory_mb=cfg.memory_mb, pids=cfg.pids), systemd=False)
    passwords = _set_passwords([name], pwd.getpwnam(HUB))
    _isolate(cfg, added=name)
    conf = HUB_DIR / "jupyterhub_config.py"  # for the Hub's next start; the running one reads the password file
    _write_hub_file(conf, hub_config(cfg, _proxy(), *cfg.inner_ports), pwd.getpwnam(HUB))
    for n, pw in passwords.items():
        say(f"{n} added; password (shown once): {pw}")
