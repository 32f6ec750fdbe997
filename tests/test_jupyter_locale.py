"""Issue 21 item 8: JupyterLab in Simplified Chinese by default, and English when the learner picks it."""

from __future__ import annotations

import json
from pathlib import Path

from labcore.state import LabPaths
from labctl import jupyter

SETTINGS = Path("lab/user-settings/@jupyterlab/translation-extension/plugin.jupyterlab-settings")


def test_course_settings_make_chinese_the_default(tmp_path: Path) -> None:
    p = LabPaths(home=tmp_path, run=tmp_path / "run")
    jupyter._course_settings(p)  # noqa: SLF001
    assert json.loads((p.jupyter / SETTINGS).read_text()) == {"locale": "zh_CN"}


def test_a_learners_choice_of_english_is_kept(tmp_path: Path) -> None:
    """设置 → 语言 → English writes the same user-settings file; the next start leaves it alone."""
    p = LabPaths(home=tmp_path, run=tmp_path / "run")
    f = p.jupyter / SETTINGS
    f.parent.mkdir(parents=True)
    f.write_text(json.dumps({"locale": "en"}))
    jupyter._course_settings(p)  # noqa: SLF001
    assert json.loads(f.read_text()) == {"locale": "en"}


def test_the_zh_cn_language_pack_is_installed_and_registered() -> None:
    """The pack JupyterLab's server lists (what the Language menu offers), with its translations."""
    from jupyterlab_server.translation_utils import get_language_packs

    packs, message = get_language_packs("en")
    assert "zh_CN" in packs, (sorted(packs), message)
    assert packs["zh_CN"]["nativeName"].startswith("中文"), packs["zh_CN"]

    from jupyterlab_server.translation_utils import get_language_pack

    data, _ = get_language_pack("zh_CN")
    menus = data["jupyterlab"]  # the menu bar's labels (msgctxt "menu")
    assert [menus.get(f"menu\x04{m}") for m in ("File", "Edit", "View", "Kernel")] == \
        [["文件"], ["编辑"], ["查看"], ["内核"]]
