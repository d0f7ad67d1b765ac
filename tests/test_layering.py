"""The packages' layering, read from their import statements (module level and inside functions).

``infrastructure/`` (run plumbing, the garage adaptation) is the ground floor: it imports neither
``learning/`` nor ``environments/``. ``environments/`` may use ``infrastructure/`` but not
``learning/``. ``learning/`` may import both.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import REPO_ROOT

# Package -> the top-level packages its modules must not import.
FORBIDDEN = {
    'infrastructure': ('learning', 'environments'),
    'environments': ('learning',),
}


def imported_modules(source: str, module: str) -> list[str]:
    """Every module an ``import``/``from ... import`` of ``source`` names, relative imports
    resolved against ``module`` (the dotted name of the file holding ``source``)."""
    names = []
    package_parts = module.split('.')[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                names.append('.'.join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or '')
    return names


def violations(root: Path, package: str, forbidden: tuple[str, ...]) -> list[str]:
    """``file: imported module`` for each import in ``root/package`` of a forbidden package."""
    found = []
    for path in sorted((root / package).rglob('*.py')):
        relative = path.relative_to(root)
        module = '.'.join(relative.with_suffix('').parts)
        for name in imported_modules(path.read_text(), module):
            if name.split('.')[0] in forbidden:
                found.append(f'{relative}: {name}')
    return found


@pytest.mark.parametrize('package', sorted(FORBIDDEN))
def test_the_package_imports_no_higher_layer(package):
    assert (REPO_ROOT / package / '__init__.py').is_file()
    assert violations(REPO_ROOT, package, FORBIDDEN[package]) == []


def test_every_form_of_import_is_caught(tmp_path):
    package = tmp_path / 'environments'
    (package / 'sub').mkdir(parents=True)
    (package / '__init__.py').write_text('import learning.garage_compat  # noqa\n')
    (package / 'sub' / 'deep.py').write_text(
        'import os\n'
        'from learning import replay\n'
        'def f():\n'
        '    from learning.networks.decaf import DecafTwinCritics\n'
        'from . import sibling\n'
        'from ..multitask import X\n'
    )
    assert violations(tmp_path, 'environments', ('learning',)) == [
        'environments/__init__.py: learning.garage_compat',
        'environments/sub/deep.py: learning',
        'environments/sub/deep.py: learning.networks.decaf',
    ]
    # Relative imports resolve inside the package, so they are never a violation here.
    assert imported_modules('from ..multitask import X', 'environments.sub.deep') == [
        'environments.multitask'
    ]
    assert imported_modules('from . import sibling', 'environments.sub.deep') == [
        'environments.sub'
    ]
