"""Command line: ``python run.py <method> [--flag value ...]``.

Method names, flag names and defaults follow the official QMP release, so its commands keep
working (e.g. ``python run.py qmp_dnc --env=MetaWorldMT10-v2``). Bad input (an unknown method,
env or flag, a malformed value, a configuration that cannot run) prints one line and exits
with code 2 before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING
from typing import Any, NoReturn

from experiment_utils import (
    METHODS,
    ConfigError,
    ExperimentConfig,
    as_dict,
    check_log_root,
    check_run_dir,
    flags_for,
    resolve_config,
    resolve_device,
)


def parse_bool(text: str) -> bool:
    """``true/false``, ``yes/no``, ``1/0`` in any case (the release took ``--wandb False``)."""
    lowered = text.lower()
    if lowered in ('true', 'yes', '1'):
        return True
    if lowered in ('false', 'no', '0'):
        return False
    raise argparse.ArgumentTypeError(f'expected true or false, got {text!r}')


_TYPES: dict[str, Callable[[str], Any]] = {
    'int': int,
    'float': float,
    'str': str,
    'bool': parse_bool,
    'int | None': int,
    'float | None': float,
    'str | None': str,
    'list[int]': int,
    'list[float]': float,
}


class _OneLineParser(argparse.ArgumentParser):
    """argparse that reports errors as a ``ConfigError`` (one line, exit 2 in ``main``)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def build_parser(method: str) -> argparse.ArgumentParser:
    """The parser of ``method``'s flags; unset flags stay absent (to apply presets first)."""
    parser = _OneLineParser(
        prog=f'run.py {method}',
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,
        description=f'Train {method} ({METHODS[method].paper_label}). '
        'Defaults < env preset < method preset < your flags.',
    )
    for field in flags_for(method):
        default = field.default_factory() if field.default_factory is not MISSING else field.default
        kwargs: dict[str, Any] = {
            'type': _TYPES[str(field.type)],
            'help': f'{field.metadata["help"]} (default: {default})',
        }
        if 'nargs' in field.metadata:
            kwargs['nargs'] = field.metadata['nargs']
        if field.type == 'bool':
            kwargs.update(nargs='?', const=True)
        if field.metadata['choices']:
            kwargs['choices'] = field.metadata['choices']
        parser.add_argument(f'--{field.name}', **kwargs)
    return parser


def _top_level_help() -> str:
    lines = [
        'usage: python run.py METHOD [--flag value ...]   (python run.py METHOD --help)',
        '       python run.py resume --snapshot_dir RUN_DIR [--n_epochs N]',
        '',
        'methods:',
    ]
    lines += [f'  {name:11s} {spec.description}' for name, spec in METHODS.items()]
    lines.append(f'  {"resume":11s} continue a run from its last snapshot')
    return '\n'.join(lines)


def parse_resume(argv: Sequence[str]) -> tuple[str, int | None]:
    """``resume`` flags -> (run directory, total epochs or None); checks the run can resume."""
    parser = _OneLineParser(
        prog='run.py resume',
        allow_abbrev=False,
        description='Continue a run from its last snapshot.',
    )
    parser.add_argument(
        '--snapshot_dir',
        required=True,
        help='the run directory (holds params.pkl and variant.json)',
    )
    parser.add_argument(
        '--n_epochs',
        type=int,
        default=None,
        help="total epochs to reach (default: the run's own --n_epochs)",
    )
    args = parser.parse_args(argv)
    planned = check_run_dir(args.snapshot_dir).n_epochs
    from infrastructure.snapshot_info import snapshot_epochs  # pylint: disable=C0415

    epochs_done = snapshot_epochs(args.snapshot_dir)  # the snapshot's, not progress.csv's rows
    if (args.n_epochs or planned) <= epochs_done:
        raise ConfigError(
            f"the run's snapshot already has {epochs_done} epochs; pass "
            '--n_epochs larger than that to continue it'
        )
    return args.snapshot_dir, args.n_epochs


def parse(argv: Sequence[str]) -> ExperimentConfig:
    """argv (without the program name) -> resolved, validated configuration."""
    if not argv or argv[0].startswith('-'):
        raise ConfigError(f'missing method; available: {", ".join(METHODS)}, resume')
    method, rest = argv[0], argv[1:]
    if method not in METHODS:
        raise ConfigError(f'unknown method {method!r}; available: {", ".join(METHODS)}, resume')
    typed = vars(build_parser(method).parse_args(rest))
    return resolve_config(method, typed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in ([], ['-h'], ['--help']):
        print(_top_level_help())
        return 0
    try:
        if argv[0] == 'resume':
            snapshot_dir, n_epochs = parse_resume(argv[1:])
        else:
            config, device_warning = resolve_device(parse(argv))
            if device_warning:
                print(f'run.py: warning: {device_warning}', file=sys.stderr)
            if not config.dry_run:
                check_log_root(config.log_root)
    except ConfigError as error:
        message = ' '.join(str(error).splitlines())
        print(f'run.py: error: {message}', file=sys.stderr)
        return 2
    if argv[0] == 'resume':
        from garage_experiments import resume_experiment  # pylint: disable=C0415

        print(f'run.py: resumed; logs and snapshot in {resume_experiment(snapshot_dir, n_epochs)}')
        return 0
    if config.dry_run:
        print(json.dumps(as_dict(config), indent=2))
        return 0
    from garage_experiments import run_experiment  # pylint: disable=import-outside-toplevel

    log_dir = run_experiment(config)
    print(f'run.py: finished; logs, snapshot and learning_curve.png in {log_dir}')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before training started (training handles its own Ctrl-C)
        print('run.py: interrupted before training started', file=sys.stderr)
        sys.exit(130)
