"""The engine runtime: a rootless Docker Engine run by an unprivileged account (``rootless``), a
private rootful one for tests that play Docker Desktop's role (``engine``), the engine packages
fetched from Debian (``enginepkgs``, pins in ``engine.toml``), the lab's registries (``registry``) and
the account's side of the lab's cgroup (``cgroups``). Used by the launcher, the classroom's servers,
the grader's worker and a learner's kernel (``kernel_ext.throwaway``); root's wing uses it too. It
imports only ``labcore``."""
