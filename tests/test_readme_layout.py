"""The README's "Code layout" names what is in the tree (the parts whose layout is settled)."""

from __future__ import annotations

import re

from conftest import REPO_ROOT

# Folders whose every module the layout names; learning/ and benchmarks/ are named as a whole.
LISTED_MODULES = ('configuration', 'environments', 'infrastructure', 'workflow')


def layout_block() -> str:
    readme = (REPO_ROOT / 'README.md').read_text()
    section = readme.split('\n## Code layout\n', 1)[1].split('\n## ', 1)[0]
    return section.split('```', 2)[1]


def test_the_layout_names_every_top_level_module_and_folder():
    block = layout_block()
    named = set(re.findall(r'[\w.]+(?=/)|[\w]+\.py', block))
    top_level = {path.name for path in REPO_ROOT.glob('*.py')}
    folders = {
        path.name
        for path in REPO_ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(('.', '_')) and any(path.rglob('*.py'))
    }
    assert top_level <= named, top_level - named
    assert folders <= named, folders - named


def test_the_layout_names_every_module_of_the_settled_folders():
    names_in_block = set(re.findall(r'\w+\.py', layout_block()))
    for folder in LISTED_MODULES:
        modules = {path.name for path in (REPO_ROOT / folder).glob('*.py')} - {'__init__.py'}
        assert modules <= names_in_block, (folder, modules - names_in_block)
