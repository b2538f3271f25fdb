"""The import contracts of pyproject.toml's ``[tool.importlinter]`` hold: ``tickets``, ``customers``, ``realtime`` and
``timeline`` import no provider module (``channels_app.providers``) and nothing of ``chat``, and the apps stand in
layers (console, chat, the core, the timeline). On failure the output names each import that breaks a contract."""

from django.conf import settings
from importlinter.cli import lint_imports


def test_the_import_contracts_are_kept():
    exit_code = lint_imports(config_filename=str(settings.BASE_DIR / "pyproject.toml"), no_cache=True, no_logo=True)

    assert exit_code == 0, "an import breaks a contract: see the report above"
