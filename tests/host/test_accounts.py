"""asroot.accounts: the one way root makes an account (the lab's, the grading pool's, the hub's, a class
member's) and its subordinate ids. A throwaway account of this test's own, removed afterwards."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from asroot import accounts
from labcore.errors import LabFailure
from labcore.subids import subid_range

NAME = f"dlacct{os.getpid() % 100_000}"


@pytest.fixture
def throwaway(tmp_path: Path) -> Iterator[str]:
    yield NAME
    subprocess.run(["userdel", "--remove", NAME], capture_output=True, check=False)
    accounts.remove_subids(NAME)


def test_an_account_gets_no_login_shell_a_private_home_and_its_own_subordinate_ids(throwaway: str,
                                                                                   tmp_path: Path) -> None:
    home = tmp_path / "home"
    pw, made = accounts.ensure_account(throwaway, comment="Docker Lab test", home=home, create_home=False, system=True)
    assert made and pw.pw_shell == accounts.NOLOGIN and pw.pw_dir == str(home)
    st = os.stat(home)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, pw.pw_gid, 0o700)
    uids, gids = subid_range(throwaway, "uid"), subid_range(throwaway, "gid")
    assert uids and gids and uids[1] == gids[1] == accounts.SUBID_SIZE
    # no other account's range overlaps it
    for line in Path("/etc/subuid").read_text().splitlines():
        other, start, count = line.split(":")
        if other not in (throwaway, str(pw.pw_uid)):
            assert int(start) + int(count) <= uids[0] or int(start) >= uids[0] + uids[1], line
    again, made_again = accounts.ensure_account(throwaway, comment="Docker Lab test", home=home, create_home=False)
    assert not made_again and again.pw_uid == pw.pw_uid and subid_range(throwaway, "uid") == uids  # idempotent


def test_a_claimed_account_that_is_not_ours_is_refused_and_ours_loses_its_login_shell(throwaway: str) -> None:
    subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", "--comment", "a real user", throwaway],
                   check=True, capture_output=True)
    with pytest.raises(LabFailure, match="not ours"):
        accounts.ensure_account(throwaway, comment="Docker Lab classroom", claim="not ours", subids=False,
                                private_home=False)
    assert pwd.getpwnam(throwaway).pw_shell == "/bin/bash"  # a real user is left as they were
    subprocess.run(["usermod", "--comment", "Docker Lab classroom", throwaway], check=True, capture_output=True)
    pw, made = accounts.ensure_account(throwaway, comment="Docker Lab classroom", claim="not ours", subids=False,
                                       private_home=False)
    assert not made and pw.pw_shell == accounts.NOLOGIN  # one the classroom made before nologin was the rule
