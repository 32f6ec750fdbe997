"""The classroom's unprivileged side: the Hub's login and spawner (run by the hub account), a member's
server, mediator and progress probe (run as that member), the instructor's progress page (the hub
account). Root's side (accounts, namespaces, the gate, the relay) is ``asroot.classroom*``."""
